#include "table/notify.hpp"

#include "table/listeners.hpp"
#include "table/table_stats.hpp"

extern "C" {
#include "commands/async.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/lsyscache.h"
}

namespace causal::pg {

int notify_payload = static_cast<int>(NotifyPayload::Kind);

void notify_row(const Firing& t, HeapTuple row, NotifyKind kind) {
    if (!someone_may_listen()) return;
    StringInfoData channel;
    initStringInfo(&channel);
    appendStringInfo(&channel, "%s.%s", get_namespace_name(RelationGetNamespace(t.rel)),
                     RelationGetRelationName(t.rel));
    if (channel.len >= NAMEDATALEN) channel.data[pg_mbcliplen(channel.data, channel.len, NAMEDATALEN - 1)] = '\0';
    const char* what = kind == NotifyKind::Orphan ? "orphan" : kind == NotifyKind::Deleted ? "deleted" : "message";
    if (notify_payload == static_cast<int>(NotifyPayload::Hlc))
        what = psprintf("%s %s", what, hlc_text(*get_hlc(t, row)));
    Async_Notify(channel.data, what);
    count(RelationGetRelid(t.rel), Counter::Announced);
}

}  // namespace causal::pg
