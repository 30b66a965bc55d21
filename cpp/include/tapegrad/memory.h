// Memory for tensors: a per-thread cache of freed blocks, reused step after
// step, and counters that prove it.
//
// Note [Caching allocator]
// A training step allocates the same sizes in the same order every time:
// activations, saved tensors, gradients, records' outputs. Going to malloc for
// each costs a lock-free but branchy path for small blocks and, for blocks
// above glibc's mmap threshold, a fresh mmap and page faults on every step.
// Instead, every tensor buffer, TensorImpl, Storage and RowSparse comes from
// the calling thread's cache: freed blocks go back to a free list of their size
// class and the next request of that class takes one without touching the
// heap. Size classes: multiples of 64 bytes up to 4 KiB, then four classes per
// power of two (at most 25% slack). A block freed on another thread joins that
// thread's cache. Each thread caches at most `cache_limit()` bytes (64 MiB by
// default, or $TAPEGRAD_CACHE_LIMIT); blocks beyond it go back to the system,
// as do blocks larger than a quarter of the limit (malloc reuses those well
// enough, and caching them would crowd out many small ones). empty_cache()
// gives the calling thread's blocks back.
//
// Because a freed block is only reused, not returned, the cache never holds
// more than the peak of what the thread had in use at once (within a size
// class), so a training loop's resident memory stays at its first step's peak.
//
// stats().system_allocations counts the calls that did go to the system: once
// a loop is warm it stays constant, which the tests check.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tg::memory {

// A 64-byte-aligned block of at least `nbytes` bytes (nbytes may be 0); from
// 2 MiB up, 2 MiB-aligned and on transparent huge pages (Note [Huge pages]).
// Throws std::bad_alloc when the system has no memory.
void* allocate(size_t nbytes);
// Gives back a block from allocate(nbytes) (the same nbytes).
void deallocate(void* p, size_t nbytes) noexcept;

struct Stats {
  uint64_t system_allocations = 0;  // blocks obtained from the system (all threads)
  uint64_t system_frees = 0;        // blocks returned to the system
  uint64_t cache_hits = 0;          // requests served from a thread cache
  uint64_t bytes_cached = 0;        // bytes held in thread caches right now
};
Stats stats();

// Returns the calling thread's cached blocks to the system.
void empty_cache();
// Per-thread cap on cached bytes (0 disables caching).
size_t cache_limit();
void set_cache_limit(size_t bytes);

// A temporary array from the same caches (kernels' scratch space: no heap
// traffic once warm, unlike a std::vector per call).
template <class T>
class Scratch {
 public:
  explicit Scratch(size_t n, T init = T()) : n_(n), p_(static_cast<T*>(allocate(n * sizeof(T)))) {
    for (size_t i = 0; i < n; i++) p_[i] = init;
  }
  ~Scratch() { deallocate(p_, n_ * sizeof(T)); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* data() { return p_; }
  T& operator[](size_t i) { return p_[i]; }

 private:
  size_t n_;
  T* p_;
};

// Class-level operator new/delete for the core's small objects, so that
// TensorImpl, Storage, RowSparse... come from the same caches.
struct Pooled {
  static void* operator new(size_t n) { return allocate(n); }
  static void operator delete(void* p, size_t n) noexcept { deallocate(p, n); }
};

}  // namespace tg::memory
