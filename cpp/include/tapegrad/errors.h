// Exceptions thrown by the core. The bindings map each onto the Python
// exception of the same name; messages always name the op and the shapes,
// dtypes or values at fault.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace tg {

struct ValueError : std::invalid_argument { using std::invalid_argument::invalid_argument; };
struct TypeError : std::runtime_error { using std::runtime_error::runtime_error; };
struct IndexError : std::out_of_range { using std::out_of_range::out_of_range; };
struct RuntimeError : std::runtime_error { using std::runtime_error::runtime_error; };

namespace detail {
inline void cat_into(std::ostringstream&) {}
template <class T, class... Rest>
void cat_into(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  cat_into(os, rest...);
}
}  // namespace detail

// str("matmul: ", a.describe(), " @ ", b.describe()) -> std::string
template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  detail::cat_into(os, args...);
  return os.str();
}

#define TG_CHECK(cond, Err, ...) \
  do {                           \
    if (!(cond)) throw ::tg::Err(::tg::str(__VA_ARGS__)); \
  } while (0)

}  // namespace tg
