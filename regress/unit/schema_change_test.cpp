// What causalctl ddl refuses, judged from the catalog before and after the
// statement: the changes rows on their way no longer fit, and those that
// would unmake a message table. A column added, a type widened pass.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "schema_change.hpp"

namespace {

using causal::schema::Column;
using causal::schema::Refusal;
using causal::schema::refused_changes;
using causal::schema::Rules;
using causal::schema::Table;

constexpr unsigned kInt4 = 23, kInt8 = 20, kText = 25, kVarchar = 1043, kHlc = 90001, kUuid = 2950;

Table messages() {
    Table t;
    t.oid = 16400;
    t.name = "chat.messages";
    t.message = true;
    t.conversation = "conversation_id";
    t.storage = "16400";
    t.columns = {{1, "msg_id", kUuid, -1, "uuid", false},
                 {2, "conversation_id", kInt8, -1, "bigint", false},
                 {3, "body", kText, -1, "text", false},
                 {4, "hlc", kHlc, -1, "causal.hlc", false},
                 {5, "mood", kText, -1, "text", false},
                 {6, "priority", kInt4, -1, "integer", false},
                 {7, "code", kVarchar, 14, "character varying(10)", false}};
    return t;
}

Rules rules() {
    Rules r;
    r.pg_causal_columns = {"msg_id", "hlc"};
    r.implicit_casts = {{kInt4, kInt8}, {kVarchar, kText}};
    return r;
}

std::vector<Refusal> judge(const Table& after) { return refused_changes({messages()}, {after}, rules()); }

Column& column(Table& t, const std::string& name) {
    for (auto& c : t.columns)
        if (c.name == name) return c;
    throw std::logic_error("no column " + name);
}

TEST(SchemaChange, NothingChangedIsNothingRefused) { EXPECT_TRUE(judge(messages()).empty()); }

TEST(SchemaChange, AnAddedColumnPasses) {
    Table after = messages();
    after.columns.push_back({8, "note", kText, -1, "text", false});
    EXPECT_TRUE(judge(after).empty());
}

// ALTER TABLE t DROP c: no COLUMN keyword for a regex to see; the catalog
// shows the column dropped.
TEST(SchemaChange, ADroppedColumnIsRefusedWhateverTheStatementSaid) {
    Table after = messages();
    Column& mood = column(after, "mood");
    mood.dropped = true;
    mood.name = "........pg.dropped.5........";
    auto refused = judge(after);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].change, "drops column mood of message table chat.messages");
    EXPECT_NE(refused[0].why.find("cannot be ordered across regions"), std::string::npos);
    EXPECT_NE(refused[0].why.find("Stop writing it"), std::string::npos);
}

TEST(SchemaChange, ARenamedColumnIsRefused) {
    Table after = messages();
    column(after, "mood").name = "feeling";
    auto refused = judge(after);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].change, "renames column mood of message table chat.messages to feeling");
}

TEST(SchemaChange, PgCausalsColumnsAndTheConversationColumnKeepTheirType) {
    Table after = messages();
    Column& hlc = column(after, "hlc");
    hlc.type = kText;
    hlc.type_name = "text";
    auto refused = judge(after);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].change, "changes the type of pg_causal's column hlc of message table chat.messages from "
                                 "causal.hlc to text");
    EXPECT_NE(refused[0].why.find("causal.enable()"), std::string::npos);

    after = messages();
    Column& conversation = column(after, "conversation_id");
    conversation.type = kText;  // even to a type the old one casts to
    conversation.type_name = "text";
    refused = judge(after);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].change.rfind("changes the type of the conversation column conversation_id", 0), 0u);
}

TEST(SchemaChange, DroppingPgCausalsColumnSaysWhose) {
    Table after = messages();
    column(after, "msg_id").dropped = true;
    auto refused = judge(after);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].change, "drops pg_causal's column msg_id of message table chat.messages");
}

TEST(SchemaChange, ATypeTheOldOneCastsToImplicitlyPasses) {
    Table after = messages();
    Column& priority = column(after, "priority");
    priority.type = kInt8;
    priority.type_name = "bigint";
    after.storage = "16500";  // int to bigint rewrites the table
    EXPECT_TRUE(judge(after).empty());
}

TEST(SchemaChange, ANarrowerTypeIsRefused) {
    Table after = messages();
    Column& mood = column(after, "mood");
    mood.type = kInt4;
    mood.type_name = "integer";
    after.storage = "16500";
    auto refused = judge(after);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].change, "changes the type of column mood of message table chat.messages from text to integer");
    EXPECT_NE(refused[0].why.find("integer may refuse"), std::string::npos);
}

// varchar(10) to varchar(20): PostgreSQL proves every value fits and does
// not rewrite; varchar(10) to varchar(5) it checks every row, a rewrite.
TEST(SchemaChange, TheSameTypeWithAnotherModifierPassesWhenPostgresDidNotRewrite) {
    Table wider = messages();
    column(wider, "code").modifier = 24;
    column(wider, "code").type_name = "character varying(20)";
    EXPECT_TRUE(judge(wider).empty());

    Table narrower = messages();
    column(narrower, "code").modifier = 9;
    column(narrower, "code").type_name = "character varying(5)";
    narrower.storage = "16501";
    EXPECT_EQ(judge(narrower).size(), 1u);

    Table unlimited = messages();
    column(unlimited, "code").modifier = -1;
    column(unlimited, "code").type_name = "character varying";
    unlimited.storage = "16502";
    EXPECT_TRUE(judge(unlimited).empty());
}

TEST(SchemaChange, ADroppedOrRenamedTableIsRefused) {
    Table gone = messages();
    gone.exists = false;
    auto refused = judge(gone);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].change, "drops message table chat.messages");
    EXPECT_TRUE(refused_changes({messages()}, {}, rules()).size() == 1u) << "missing after is dropped too";

    Table moved = messages();
    moved.name = "archive.messages";
    refused = judge(moved);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].change, "renames message table chat.messages to archive.messages");
}

TEST(SchemaChange, AMessageTableStaysOne) {
    Table ordinary = messages();
    ordinary.message = false;
    auto refused = judge(ordinary);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].change, "makes message table chat.messages an ordinary table");

    Table outside = messages();
    outside.problem = "pg_causal's triggers must stay on it, enabled ALWAYS";
    refused = judge(outside);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].change, "takes message table chat.messages out of the shape of a message table: pg_causal's "
                                 "triggers must stay on it, enabled ALWAYS");
}

TEST(SchemaChange, ATableAlreadyOutsideTheShapeIsNotRefusedForStayingThere) {
    Table before = messages();
    before.problem = "its replica identity must stay the unique index on msg_id";
    Table after = before;
    after.columns.push_back({8, "note", kText, -1, "text", false});
    EXPECT_TRUE(refused_changes({before}, {after}, rules()).empty());
}

TEST(SchemaChange, AReplicatedTableThatIsNoMessageTable) {
    Table regions;
    regions.oid = 16300;
    regions.name = "causal.regions";
    regions.storage = "16300";
    regions.columns = {{1, "region", kText, -1, "text", false}, {2, "epoch", kInt8, -1, "bigint", false}};
    Table after = regions;
    after.columns[1].dropped = true;
    auto refused = refused_changes({regions}, {after}, rules());
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].change, "drops column epoch of replicated table causal.regions");
}

TEST(SchemaChange, EveryRefusedChangeIsListed) {
    Table after = messages();
    column(after, "mood").dropped = true;
    column(after, "body").name = "text";
    EXPECT_EQ(judge(after).size(), 2u);
}

TEST(SchemaChange, ANewTableIsNoneOfItsBusiness) {
    Table created = messages();
    created.oid = 17000;
    created.name = "chat.more";
    EXPECT_TRUE(refused_changes({messages()}, {messages(), created}, rules()).empty());
}

}  // namespace
