// causal.catch_up(): what a client that saw some messages of a
// conversation has missed, in the one order, or 5C003 when this region has
// not yet received something it saw.
#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "core/merge.hpp"
#include "hlc/hlc_datum.hpp"
#include "infra/guard.hpp"
#include "infra/postgres.hpp"
#include "infra/settings.hpp"
#include "infra/spi.hpp"
#include "infra/sqlstates.hpp"
#include "mesh/regions.hpp"
#include "read/conversation.hpp"

extern "C" {
#include "access/xact.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "utils/wait_event.h"
}

namespace causal::pg {
namespace {

// causal.caught_up: causal.merged's columns, then deleted.
constexpr int kCaughtUpColumns = kMergedColumns + 1;

// Adds the rows `sql` selects to `input`; SPI connected. Planned once per
// backend: a client catching up calls this often, and planning would cost
// more than reading.
void add_rows(merge::Input& input, const char* sql, int nargs, Oid* types, Datum* args) {
    spi_run_plan(kept_plan(sql, nargs, types), SPI_OK_SELECT, args, nullptr, false, sql);
    add_selected_rows(input, SPI_tuptable, SPI_processed);
}

// What a client that saw `seen` (and, with a cursor, everything below
// `since`) has missed, read with a new snapshot (in READ COMMITTED) into
// `area`: the whole conversation, or with a cursor the tail at or after it.
// A seen hlc the tail lacks may name a later copy of a message headed below
// the cursor; those rows are read too, and the tail merged again, so that
// their past counts as seen.
struct Answer {
    merge::History* history;
    merge::CatchUp* result;
};

Answer read_conversation(const ConversationQuery& query, const HlcSpan& seen, const Hlc* since, WorkArea area) {
    merge::Input* input = cpp_guard([&] { return make_in<merge::Input>(*area.memory, area.memory); });
    Oid types[3] = {query.key_type, query.hlc_type, get_array_type(query.hlc_type)};
    Datum args[3] = {query.key, since ? hlc_datum(*since) : Datum(0), Datum(0)};
    const std::optional<Hlc> cursor = since ? std::optional<Hlc>(*since) : std::nullopt;
    SPI_connect();
    add_rows(*input, since ? query.tail_sql : query.sql, since ? 2 : 1, types, args);
    const FenceList fences = read_fences_into(area.context, true);
    Answer answer;
    for (int pass = 0;; ++pass) {
        answer.history = cpp_guard([&] {
            std::vector<merge::Fence> list(fences.fences, fences.fences + fences.count);
            return make_in<merge::History>(*area.memory, input->merge(list, area.memory, cursor));
        });
        answer.result = cpp_guard([&] {
            return make_in<merge::CatchUp>(*area.memory,
                                           answer.history->catch_up(seen.values, seen.count, area.memory, cursor));
        });
        if (!since || pass > 0 || answer.result->not_here.empty()) break;
        auto* names = static_cast<Datum*>(palloc(sizeof(Datum) * answer.result->not_here.size()));
        for (size_t i = 0; i < answer.result->not_here.size(); ++i) names[i] = hlc_datum(answer.result->not_here[i]);
        args[2] = PointerGetDatum(construct_array(names, static_cast<int>(answer.result->not_here.size()),
                                                  query.hlc_type, sizeof(Hlc), false, TYPALIGN_DOUBLE));
        add_rows(*input, query.named_sql, 3, types, args);
    }
    SPI_finish();
    return answer;
}

// The conversation's deleted messages (with a cursor, those deleted at or
// after it), by deletion, in `area`. Read after the history, with a snapshot
// of its own: the notices of deletions appended to the answer are kept to
// messages the client has (client_has).
struct Deletion {
    merge::MsgId msg_id;
    Hlc hlc;
};
using Deletions = std::pmr::vector<Deletion>;

Deletions* read_deletions(const ConversationQuery& query, const Hlc* since, WorkArea area) {
    Deletions* deletions = cpp_guard([&] { return make_in<Deletions>(*area.memory, area.memory); });
    Oid types[2] = {query.key_type, query.hlc_type};
    Datum args[2] = {query.key, since ? hlc_datum(*since) : Datum(0)};
    const char* sql = since ? query.deleted_since_sql : query.deleted_sql;
    SPI_connect();
    spi_run_plan(kept_plan(sql, since ? 2 : 1, types), SPI_OK_SELECT, args, nullptr, false, sql);
    MemoryContext spi = MemoryContextSwitchTo(area.context);
    for (uint64 i = 0; i < SPI_processed; ++i) {
        bool id_null = false, hlc_null = false;
        const Datum id = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &id_null);
        const Datum hlc = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &hlc_null);
        if (id_null || hlc_null) continue;
        Deletion d;
        std::memcpy(d.msg_id.data(), DatumGetUUIDP(id)->data, d.msg_id.size());
        d.hlc = *reinterpret_cast<const Hlc*>(DatumGetPointer(hlc));
        cpp_guard([&] { deletions->push_back(d); });
    }
    MemoryContextSwitchTo(spi);
    SPI_finish();
    return deletions;
}

// The deleted msg_ids, sorted, to look rows up in.
std::pmr::vector<merge::MsgId>* sorted_ids(const Deletions& deletions, WorkArea area) {
    auto* ids = cpp_guard([&] { return make_in<std::pmr::vector<merge::MsgId>>(*area.memory, area.memory); });
    cpp_guard([&] {
        ids->reserve(deletions.size());
        for (const Deletion& d : deletions) ids->push_back(d.msg_id);
        std::sort(ids->begin(), ids->end());
    });
    return ids;
}

// What the client has of a message not returned as missed: everything
// below the cursor, and what the history holds in the past of `seen` (the
// history read holds every message at or after the cursor that it could
// know of; one it lacks came after the read).
bool client_has(const Deletion& d, const Hlc& since, const merge::History& history) {
    return d.hlc < since || history.find(d.hlc).has_value();
}

// The first few of `values`, for a message.
char* list_hlcs(const std::pmr::vector<Hlc>& values) {
    StringInfoData out;
    initStringInfo(&out);
    char text[kHlcTextMax];
    for (size_t i = 0; i < values.size() && i < 3; ++i) {
        format(values[i], text);
        appendStringInfo(&out, "%s%s", i ? ", " : "", text);
    }
    if (values.size() > 3) appendStringInfoString(&out, ", ...");
    return out.data;
}

// 5C003: never a silent gap.
[[noreturn]] void raise_behind(const merge::CatchUp& result, const char* conversation, bool can_wait) {
    char* not_here = list_hlcs(result.not_here);
    char* not_delivered = list_hlcs(result.not_delivered);
    const size_t missing = result.not_here.size();
    const size_t waiting = result.not_delivered.size();
    const char* live = own_region_state().live_region;
    ereport(ERROR,
            (errcode(kRegionBehind),
             errmsg("region \"%s\" has not yet received everything the client saw in conversation \"%s\"",
                    region_setting ? region_setting : "", conversation),
             missing > 0 && waiting > 0
                 ? errdetail("%zu seen message(s) have not arrived (%s); %zu arrived but wait for a "
                             "dependency (%s).", missing, not_here, waiting, not_delivered)
             : missing > 0 ? errdetail("%zu seen message(s) have not arrived: %s.", missing, not_here)
                           : errdetail("%zu seen message(s) arrived but wait for a dependency: %s.",
                                       waiting, not_delivered),
             !can_wait ? errhint("This transaction's snapshot cannot see new rows: retry in a new "
                                 "transaction, or read from another region.")
             : live != nullptr
                 ? errhint("Replication is still delivering them: retry, pass wait_for, or read from "
                           "region \"%s\".", live)
                 : errhint("Replication is still delivering them: retry, or pass wait_for.")));
    pg_unreachable();
}

// Saturating: a wait of years is a wait of years, not an overflow.
int64 interval_microseconds(const Interval* span) {
    const double us = static_cast<double>(span->time) + static_cast<double>(span->day) * USECS_PER_DAY +
                      static_cast<double>(span->month) * DAYS_PER_MONTH * USECS_PER_DAY;
    constexpr double kMax = static_cast<double>(PG_INT64_MAX / 4);
    return us >= kMax ? static_cast<int64>(kMax) : static_cast<int64>(us);
}

}  // namespace
}  // namespace causal::pg

using namespace causal;
using namespace causal::pg;

CAUSAL_FUNCTION(catch_up) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("causal.catch_up needs a message table and a conversation")));
    const Oid relid = PG_GETARG_OID(0);
    char* conversation = TextDatumGetCString(PG_GETARG_DATUM(1));
    // NULL seen: the client saw nothing, and gets everything.
    HlcSpan seen = PG_ARGISNULL(2) ? HlcSpan{} : hlcs_of(PG_GETARG_ARRAYTYPE_P(2), "seen");
    const int64 wait_us = PG_ARGISNULL(3) ? 0 : interval_microseconds(PG_GETARG_INTERVAL_P(3));
    if (wait_us < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("wait_for must not be negative")));
    // A cursor: the client saw every message with a copy below it.
    const Hlc* since = PG_NARGS() > 4 && !PG_ARGISNULL(4) ? arg_hlc(fcinfo, 4) : nullptr;

    const ConversationQuery query = conversation_query(relid, conversation);
    // Waiting helps only if each read takes a new snapshot.
    const bool can_wait = !IsolationUsesXactSnapshot();
    const TimestampTz deadline = GetCurrentTimestamp() + wait_us;
    WorkArea area = new_work_area();
    for (;;) {
        Backlog backlog;
        if (catching_up_now(backlog)) {
            if (!can_wait || GetCurrentTimestamp() >= deadline) raise_catching_up(backlog, conversation, true);
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 20, PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
            continue;
        }
        const Answer answer = read_conversation(query, seen, since, area);
        merge::History* history = answer.history;
        merge::CatchUp* result = answer.result;
        if (!result->behind()) {
            const Deletions& deletions = *read_deletions(query, since, area);
            const auto& deleted = *sorted_ids(deletions, area);
            InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
            auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
            Datum merged[kMergedColumns];
            Datum values[kCaughtUpColumns];
            bool nulls[kCaughtUpColumns] = {};
            // Gone with the area: no destructor runs after it.
            auto& returned =
                *cpp_guard([&] { return make_in<std::pmr::vector<merge::MsgId>>(*area.memory, area.memory); });
            for (uint32_t index : result->missed) {
                merged_row(*history, index, merged);
                std::copy(std::begin(merged), std::end(merged), values);
                const merge::MsgId& id = history->messages()[index].msg_id;
                values[kMergedColumns] = BoolGetDatum(std::binary_search(deleted.begin(), deleted.end(), id));
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
                if (since) cpp_guard([&] { returned.push_back(id); });
            }
            // With a cursor: what the client has (below the cursor, or in
            // the past of `seen`) and was deleted since.
            if (since) {
                std::sort(returned.begin(), returned.end());
                for (const Deletion& d : deletions) {
                    if (std::binary_search(returned.begin(), returned.end(), d.msg_id)) continue;
                    if (!client_has(d, *since, *history)) continue;
                    bool none[kCaughtUpColumns] = {true, false, false, true, true, true, false};
                    values[1] = PointerGetDatum(d.msg_id.data());
                    values[2] = hlc_datum(d.hlc);
                    values[kMergedColumns] = BoolGetDatum(true);
                    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, none);
                }
            }
            MemoryContextDelete(area.context);
            return Datum(0);
        }
        if (!can_wait || GetCurrentTimestamp() >= deadline)
            raise_behind(*result, conversation, can_wait);
        MemoryContextDelete(area.context);
        area = new_work_area();
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 20, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

