#include "notify.hpp"

#include "listeners.hpp"
#include "table_stats.hpp"

extern "C" {
#include "commands/async.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/lsyscache.h"
}

namespace causal::pg {

namespace {
// async.c's NOTIFY_PAYLOAD_MAX_LENGTH, which no header exports.
constexpr int kPayloadMaxLength = BLCKSZ - NAMEDATALEN - 128;
}  // namespace

void notify_row(const Firing& t, HeapTuple row, const Hlc& hlc, NotifyKind kind) {
    if (!someone_may_listen()) return;
    bool isnull = false;
    const Datum conversation = get(t, row, t.columns.conversation, &isnull);
    Oid output = InvalidOid;
    bool varlena = false;
    getTypeOutputInfo(TupleDescAttr(t.desc, t.columns.conversation - 1)->atttypid, &output, &varlena);
    StringInfoData channel, payload;
    initStringInfo(&channel);
    appendStringInfo(&channel, "%s.%s", get_namespace_name(RelationGetNamespace(t.rel)),
                     RelationGetRelationName(t.rel));
    if (channel.len >= NAMEDATALEN) channel.data[pg_mbcliplen(channel.data, channel.len, NAMEDATALEN - 1)] = '\0';
    initStringInfo(&payload);
    appendStringInfo(&payload, "%s %s%s", isnull ? "" : OidOutputFunctionCall(output, conversation), hlc_text(hlc),
                     kind == NotifyKind::Orphan ? " orphan" : kind == NotifyKind::Deleted ? " deleted" : "");
    // Async_Notify would raise, and on the apply path a row's error must
    // not stop replication: a conversation key this long goes unannounced.
    if (payload.len >= kPayloadMaxLength) {
        ereport(WARNING, (errmsg("pg_causal did not announce a message of \"%s\": its conversation key is too long "
                                 "for a NOTIFY payload",
                                 RelationGetRelationName(t.rel))));
        return;
    }
    Async_Notify(channel.data, payload.data);
    count(RelationGetRelid(t.rel), Counter::Announced);
}

}  // namespace causal::pg
