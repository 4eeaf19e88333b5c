// A real PostgreSQL for the tests (no mock): $FACEREC_PG_URI when set (a
// server where the tests may CREATE DATABASE; scripts/test.sh starts one with
// scripts/pg_test_server.sh), else one started by that script for this test
// process and stopped at its exit.
#pragma once

#include <libpq-fe.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace facerec::testing {

namespace pg_detail {
struct Server {
  std::string uri, reason, dir;
  Server() {
    if (const char* env = std::getenv("FACEREC_PG_URI"); env && *env) {
      uri = env;
      return;
    }
    char tmpl[] = "/tmp/facerec_pg_XXXXXX";
    if (!mkdtemp(tmpl)) {
      reason = "cannot make a temporary folder";
      return;
    }
    dir = tmpl;
    const std::string cmd = std::string(FACEREC_SOURCE_DIR) + "/scripts/pg_test_server.sh start " + dir + " 2>&1";
    std::string out;
    if (FILE* p = popen(cmd.c_str(), "r")) {
      std::array<char, 512> buf;
      while (fgets(buf.data(), buf.size(), p)) out += buf.data();
      const int rc = pclose(p);
      while (!out.empty() && out.back() == '\n') out.pop_back();
      const size_t nl = out.rfind('\n');
      const std::string last = nl == std::string::npos ? out : out.substr(nl + 1);
      if (rc == 0 && last.rfind("postgresql://", 0) == 0) uri = last;
      else reason = "scripts/pg_test_server.sh: " + out;
    }
  }
  ~Server() {
    if (!dir.empty() && getpid() == owner)
      std::system((std::string(FACEREC_SOURCE_DIR) + "/scripts/pg_test_server.sh stop " + dir + " >/dev/null 2>&1").c_str());
  }
  pid_t owner = getpid();
};
inline Server& server() {
  static Server s;
  return s;
}
}  // namespace pg_detail

// The server's URI, or "" when PostgreSQL is unavailable (the reason is in
// pg_unavailable_reason()).
inline const std::string& pg_server_uri() { return pg_detail::server().uri; }
inline const std::string& pg_unavailable_reason() { return pg_detail::server().reason; }

// Runs SQL on a database (libpq); "" on success, else the error.
inline std::string pg_exec(const std::string& uri, const std::string& sql) {
  PGconn* c = PQconnectdb(uri.c_str());
  std::string err;
  if (PQstatus(c) != CONNECTION_OK) {
    err = PQerrorMessage(c);
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) err = PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(c);
  return err;
}

// The first value of a query's first row ("<error: ...>" on failure).
inline std::string pg_value(const std::string& uri, const std::string& sql) {
  PGconn* c = PQconnectdb(uri.c_str());
  std::string out;
  if (PQstatus(c) != CONNECTION_OK) {
    out = std::string("<error: ") + PQerrorMessage(c) + ">";
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
    else out = std::string("<error: ") + PQresultErrorMessage(r) + ">";
    PQclear(r);
  }
  PQfinish(c);
  return out;
}

// A fresh empty database on the server; its URI.
inline std::string pg_fresh_database(const std::string& tag) {
  static int counter = 0;
  const std::string name = "t_" + tag + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
  const std::string& base = pg_server_uri();
  std::string err = pg_exec(base, "CREATE DATABASE \"" + name + "\"");
  EXPECT_EQ(err, "") << "CREATE DATABASE " << name;
  // Replace the path's database name (postgresql://user@host:port/DB[?...]).
  const size_t scheme = base.find("://") + 3;
  const size_t slash = base.find('/', scheme);
  const size_t q = base.find('?', scheme);
  const std::string head = slash == std::string::npos ? base.substr(0, q) : base.substr(0, slash);
  const std::string tail = q == std::string::npos ? "" : base.substr(q);
  return head + "/" + name + tail;
}

}  // namespace facerec::testing

// Skips the current test with a loud banner when PostgreSQL is unavailable.
#define FACEREC_REQUIRE_POSTGRES()                                                                   \
  do {                                                                                               \
    if (::facerec::testing::pg_server_uri().empty()) {                                               \
      fprintf(stderr, "\n!!!!! SKIPPING %s: PostgreSQL is UNAVAILABLE (%s). This test did NOT run. " \
                      "Install the Debian package postgresql. !!!!!\n\n",                             \
              ::testing::UnitTest::GetInstance()->current_test_info()->name(),                        \
              ::facerec::testing::pg_unavailable_reason().c_str());                                  \
      GTEST_SKIP() << "PostgreSQL unavailable: NOT run";                                             \
    }                                                                                                \
  } while (0)
