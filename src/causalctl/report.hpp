// How a command that changes the mesh reports, in one place: as text for
// people (its result on `out`, a refusal or an error on `err`) or, with
// --json, as one JSON document on `out`, whatever happens: {"ok": ...}, the
// members the command added as it went (what it did before it stopped),
// then "refused" or "error" when it did not finish.
#pragma once

#include <ostream>
#include <string>

#include "commands.hpp"
#include "json.hpp"
#include "pg.hpp"

namespace causalctl {

class Report {
public:
    Report(std::string command, const Options& options, std::ostream& out, std::ostream& err)
        : command_(std::move(command)), options_(options), out_(out), err_(err) {}

    const Options& options() const { return options_; }
    bool json() const { return options_.json; }
    // Where a command writes its text as it goes (nothing with --json).
    std::ostream& out() const { return out_; }

    // A member of the JSON document, in the order added.
    Report& add(const std::string& key, std::string rendered) {
        document_.add(key, std::move(rendered));
        return *this;
    }

    // A usage error (exit 2): on err, with --json too, as every usage error.
    int usage(const std::string& what) const {
        err_ << "causalctl " << command_ << ": " << what << '\n';
        return kUsage;
    }
    // Refused: the command would be unsafe and changed nothing (exit 4).
    int refuse(const std::string& why) const;
    // Stopped by a region: `what` on err (or as "error", with the region),
    // and `code`, exit 3 unless said otherwise.
    int error(const std::string& what, const std::string& region = {}, int code = kUnreachable) const;
    int failed(const DbError& error) const { return this->error(error.what(), error.region()); }
    // Done: `text` on out, or the document with "ok": `ok`.
    int done(int code, bool ok, const std::string& text) const;

    // Runs a command's body: a statement that fails where the body does
    // not expect it ends the command as failed().
    template <typename Body>
    int run(Body body) const {
        try {
            return body();
        } catch (const DbError& e) {
            return failed(e);
        }
    }

private:
    json::Object document(bool ok) const;

    std::string command_;
    const Options& options_;
    std::ostream& out_;
    std::ostream& err_;
    json::Object document_;
};

}  // namespace causalctl
