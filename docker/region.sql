-- What every region of the demo, the cluster tests and docker/ runs once it
-- has joined the mesh (causalctl init gives it its node id and name, which
-- causal.enable() needs); `causalctl init` again then carries the table.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_causal;
CREATE SCHEMA IF NOT EXISTS chat;
CREATE TABLE IF NOT EXISTS chat.messages (
    conversation_id bigint NOT NULL,
    sender          text NOT NULL DEFAULT '',  -- the defaults are what a deleted
    body            text NOT NULL DEFAULT ''   -- message's tombstone keeps
);
SELECT causal.enable('chat.messages', conversation => 'conversation_id', notify => true);
