// The replication role (sql/replication.sql) in the processes that run as
// it: PostgreSQL's apply and table sync workers, pg_causal's relay.
//
// PostgreSQL 15's apply worker evaluates a table's defaults (for columns
// its sender lacks), constraints and index expressions as its
// subscription's owner, before pg_causal's trigger. The shape of a message
// table (table_shape.hpp) keeps the owner's code out of those; this is the
// layer behind it: no SQL statement runs as the replication role but
// pg_causal's own. An executor start or utility command while the current
// user is that role, outside a statement pg_causal runs itself
// (spi.hpp's in_own_statement()), is refused. So a function of a table's
// owner that reached the role anyway (a default of a table older than the
// shape, a function that runs SQL given as a string) runs no query with its
// rights. pg_causal's code that runs a table owner's runs it as the owner
// (owner.hpp), and its triggers on its own tables are SECURITY DEFINER.
#pragma once

#include "infra/postgres.hpp"

namespace causal::pg {

void replication_role_install_hooks();

// Restarts the replication workers of this database that run as another
// role than their subscription's owner: PostgreSQL 15's worker keeps the
// role it started with after ALTER SUBSCRIPTION ... OWNER TO, and the
// launcher starts the next one as the new owner. For the liveness worker,
// in a transaction, SPI connected. Returns how many it restarted.
int restart_workers_of_former_owners();

}  // namespace causal::pg
