#pragma once
// Kernel errors keep their errno name and say which device/socket failed, e.g.
//   "open TUN flannel%d: EPERM (needs CAP_NET_ADMIN)".
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace flannelts {

// "EPERM", "EEXIST", ...; "E<n>" for a number glibc has no name for (as the TypeScript netlink codec
// names them), so JavaScript can branch on err.code like on Node's own system errors.
inline std::string ErrnoName(int err) {
  const char* n = strerrorname_np(err);
  return n ? n : "E" + std::to_string(err);
}

class SysError : public std::runtime_error {
 public:
  SysError(const std::string& what, int err, const std::string& hint = "")
      : std::runtime_error(what + ": " + ErrnoName(err) + (hint.empty() ? " (" + std::string(strerror(err)) + ")" : " (" + hint + ")")),
        err_(err) {}
  int err() const { return err_; }

 private:
  int err_;
};

}  // namespace flannelts
