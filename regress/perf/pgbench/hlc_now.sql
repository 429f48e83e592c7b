SELECT causal.hlc_now();
