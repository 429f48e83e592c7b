#include "clock.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <unistd.h>

namespace causal {

Tick advance(ClockState& state, uint64_t now_ms, std::optional<uint64_t> remote,
             uint64_t max_offset_ms) noexcept {
    const uint64_t remote_ms = remote ? Hlc::physical_ms_of(*remote) : 0;
    const uint64_t remote_logical = remote ? Hlc::logical_of(*remote) : 0;
    uint64_t last = state.last.load(std::memory_order_acquire);
    for (;;) {
        const uint64_t last_ms = Hlc::physical_ms_of(last), last_logical = Hlc::logical_of(last);
        uint64_t ms = last_ms > now_ms ? last_ms : now_ms;
        if (remote && remote_ms > ms) ms = remote_ms;

        uint64_t logical = 0;
        if (ms == last_ms) logical = last_logical + 1;
        if (remote && ms == remote_ms && remote_logical + 1 > logical) logical = remote_logical + 1;

        if (logical > Hlc::kMaxLogical) {
            if (ms <= now_ms) return {TickStatus::WaitForWallMs, 0, ms};
            ++ms;
            logical = 0;
        }
        if (ms > Hlc::kMaxPhysicalMs) return {TickStatus::Exhausted, 0, ms};
        if (ms >= state.ceiling_ms.load(std::memory_order_acquire))
            return {TickStatus::NeedsCeiling, 0, ms};

        const uint64_t next = Hlc::pack(ms, static_cast<uint32_t>(logical));
        if (state.last.compare_exchange_weak(last, next, std::memory_order_acq_rel,
                                             std::memory_order_acquire))
            return {TickStatus::Issued, next, ms};
        // Another backend issued first; `last` now holds its value.
    }
}

RemoteCheck check_remote(ClockState& state, uint64_t remote_wall, uint64_t now_ms,
                         uint64_t max_offset_ms) noexcept {
    const uint64_t remote_ms = Hlc::physical_ms_of(remote_wall);
    const uint64_t lead = remote_ms > now_ms ? remote_ms - now_ms : 0;
    atomic_max(state.max_remote_lead_ms, lead);
    if (lead <= max_offset_ms) return {true, lead};
    state.offset_rejections.fetch_add(1, std::memory_order_relaxed);
    return {false, lead};
}

uint64_t system_wall_ms() noexcept {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

namespace {

constexpr const char kCeilingHeader[] = "pg_causal clock ceiling v1\n";

[[noreturn]] void throw_io(const std::string& what, const std::string& path, int err) {
    throw Error(ErrorKind::Io, what + " \"" + path + "\": " + std::strerror(err));
}

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }

private:
    int fd_;
};

std::string directory_of(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

std::optional<uint64_t> CeilingFile::read() const {
    Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw_io("could not open clock ceiling file", path_, errno);
    }
    char buf[128];
    ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
    if (n < 0) throw_io("could not read clock ceiling file", path_, errno);
    buf[n] = '\0';

    // Exactly the header, one run of digits, one newline: anything else was
    // not written by write() and is not trusted.
    const size_t header = sizeof kCeilingHeader - 1;
    const size_t length = static_cast<size_t>(n);
    size_t end = header;
    uint64_t ceiling = 0;
    bool valid = length > header && std::memcmp(buf, kCeilingHeader, header) == 0;
    while (valid && end < length && buf[end] >= '0' && buf[end] <= '9') {
        ceiling = ceiling * 10 + static_cast<uint64_t>(buf[end++] - '0');
        valid = ceiling <= Hlc::kMaxPhysicalMs;
    }
    valid = valid && end > header && end + 1 == length && buf[end] == '\n';
    if (!valid)
        throw Error(ErrorKind::Io, "clock ceiling file \"" + path_ + "\" is corrupt",
                    "It must hold the header line and one number of milliseconds.");
    return ceiling;
}

void CeilingFile::write(uint64_t ceiling_ms) const {
    const std::string temp = path_ + ".tmp";
    char buf[128];
    int len = std::snprintf(buf, sizeof buf, "%s%llu\n", kCeilingHeader,
                            static_cast<unsigned long long>(ceiling_ms));
    {
        Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (fd.get() < 0) throw_io("could not create clock ceiling file", temp, errno);
        if (::write(fd.get(), buf, static_cast<size_t>(len)) != len)
            throw_io("could not write clock ceiling file", temp, errno ? errno : ENOSPC);
        if (::fsync(fd.get()) != 0) throw_io("could not fsync clock ceiling file", temp, errno);
        if (::close(fd.release()) != 0) throw_io("could not close clock ceiling file", temp, errno);
    }
    if (::rename(temp.c_str(), path_.c_str()) != 0)
        throw_io("could not rename clock ceiling file to", path_, errno);
    const std::string dir = directory_of(path_);
    Fd dirfd(::open(dir.c_str(), O_RDONLY | O_CLOEXEC));
    if (dirfd.get() < 0 || ::fsync(dirfd.get()) != 0)
        throw_io("could not fsync directory", dir, errno);
}

}  // namespace causal
