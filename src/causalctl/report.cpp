#include "report.hpp"

namespace causalctl {

json::Object Report::document(bool ok) const {
    json::Object o;
    o.add("ok", json::boolean(ok)).add(document_);
    return o;
}

int Report::refuse(const std::string& why) const {
    if (options_.json)
        out_ << document(false).add("refused", json::string(why)).str() << '\n';
    else
        err_ << "causalctl " << command_ << ": refused: " << why << "\nNothing was changed.\n";
    return kRefused;
}

int Report::error(const std::string& what, const std::string& region, int code) const {
    if (options_.json) {
        json::Object o = document(false);
        if (!region.empty()) o.add("region", json::string(region));
        out_ << o.add("error", json::string(what)).str() << '\n';
    } else {
        err_ << "causalctl " << command_ << ": " << what << '\n';
    }
    return code;
}

int Report::done(int code, bool ok, const std::string& text) const {
    if (options_.json)
        out_ << document(ok).str() << '\n';
    else
        out_ << text;
    return code;
}

}  // namespace causalctl
