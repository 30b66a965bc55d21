// The per-thread caching allocator (see Note [Caching allocator]).
#include "tapegrad/memory.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace tg::memory {

namespace {

constexpr size_t kAlign = 64;
constexpr size_t kSmallLimit = 4096;            // 64-byte classes up to here
constexpr int kSmallClasses = kSmallLimit / 64;  // classes 0..63: 64..4096 bytes
constexpr int kMaxClasses = kSmallClasses + 4 * 52;

std::atomic<uint64_t> g_system_allocations{0};
std::atomic<uint64_t> g_system_frees{0};
// TAPEGRAD_CACHE_LIMIT (bytes) overrides the default; the sanitizer job sets
// it to 0 so that AddressSanitizer sees every free.
size_t initial_cache_limit() {
  if (const char* env = std::getenv("TAPEGRAD_CACHE_LIMIT")) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(env, &end, 10);
    if (end && *end == '\0' && end != env) return (size_t)v;
  }
  return size_t(64) << 20;
}
std::atomic<size_t> g_cache_limit{initial_cache_limit()};

// The class of a request and the capacity every block of that class has.
struct SizeClass {
  int index;
  size_t capacity;
};

SizeClass size_class(size_t nbytes) {
  if (nbytes <= kSmallLimit) {
    size_t units = nbytes == 0 ? 1 : (nbytes + 63) / 64;
    return {(int)units - 1, units * 64};
  }
  // Four classes per power of two: for 2^k < nbytes <= 2^(k+1), capacities of
  // 5, 6, 7 or 8 quarters of 2^k.
  int k = 63 - __builtin_clzll((unsigned long long)(nbytes - 1));
  size_t quarter = size_t(1) << (k - 2);
  size_t quarters = (nbytes + quarter - 1) / quarter;  // 5..8
  int sub = (int)quarters - 5;
  size_t capacity = quarters * quarter;
  return {kSmallClasses + (k - 12) * 4 + sub, capacity};
}

// Note [Huge pages]
// Blocks of 2 MiB or more start on a 2 MiB boundary and ask the kernel for
// transparent huge pages (Linux's default THP mode, "madvise", gives them only
// to ranges that ask). The embedding table is the case that pays: a
// batch-512 NER step reads and updates 2,560 rows at random across a 4 MB
// table, and nearly every row is a TLB miss on 4 KiB pages, which in a VM is a
// two-level page walk. With two huge pages instead the gather went 53 -> 47 us
// and the sparse update 45 -> 34 us, the whole step 3% faster (12 interleaved
// rounds, 1 thread, 2-core AMD EPYC VM; on 2 threads an earlier session saw
// +0.5%, within noise, and the MLP step, with 4 MB weights and Adam states,
// did not move beyond its noise). Only whole 2 MiB pieces are advised,
// so the block's tail stays on small pages and resident memory does not grow
// by the rounding. $TAPEGRAD_HUGE_PAGES=0 turns it off.
constexpr size_t kHugePage = size_t(2) << 20;

bool huge_pages_wanted() {
  static const bool wanted = [] {
    const char* env = std::getenv("TAPEGRAD_HUGE_PAGES");
    return !(env && env[0] == '0' && env[1] == '\0');
  }();
  return wanted;
}

void* system_allocate(size_t capacity) {
  void* p = nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (capacity >= kHugePage && huge_pages_wanted()) {
    if (posix_memalign(&p, kHugePage, capacity) != 0) throw std::bad_alloc();
    // Advice, not a requirement: where THP is off this fails and small pages serve.
    (void)madvise(p, capacity / kHugePage * kHugePage, MADV_HUGEPAGE);
    g_system_allocations.fetch_add(1, std::memory_order_relaxed);
    return p;
  }
#endif
  p = std::aligned_alloc(kAlign, capacity);
  if (!p) throw std::bad_alloc();
  g_system_allocations.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void system_free(void* p) {
  std::free(p);
  g_system_frees.fetch_add(1, std::memory_order_relaxed);
}

// A counter only its thread writes: a plain load and store, no locked
// read-modify-write on the allocation path; stats() reads it from any thread.
struct OwnedCounter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t d) { v.store(v.load(std::memory_order_relaxed) + d, std::memory_order_relaxed); }
  void sub(uint64_t d) { v.store(v.load(std::memory_order_relaxed) - d, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

// Free blocks of one class, linked through their first word: pushing and
// popping never allocates (a vector of pointers had to grow, and could fail).
struct FreeList {
  void* head = nullptr;
  void push(void* p) {
    *static_cast<void**>(p) = head;
    head = p;
  }
  void* pop() {
    void* p = head;
    if (p) head = *static_cast<void**>(p);
    return p;
  }
};

struct Cache {
  FreeList free[kMaxClasses];
  OwnedCounter bytes;  // what the free lists hold
  OwnedCounter hits;

  void release_all() {
    for (int c = 0; c < kMaxClasses; c++)
      while (void* p = free[c].pop()) system_free(p);
    bytes.sub(bytes.get());
  }
};

// Every live thread's cache, for stats(); the hits of exited threads.
std::mutex g_registry_mutex;
std::vector<Cache*>& registry() {
  static auto* caches = new std::vector<Cache*>();  // never destroyed: threads may outlive statics
  return *caches;
}
uint64_t g_retired_hits = 0;  // guarded by g_registry_mutex

// Note [Thread cache lifetime]
// The cache pointer is a plain thread_local (no destructor, so it stays
// readable during thread exit); a second thread_local object owns it and, when
// the thread exits, frees it and marks the pointer dead, so that tensors dying
// later in the exit sequence (the thread's tape, Python objects) go straight
// back to the system.
Cache* const kDead = reinterpret_cast<Cache*>(uintptr_t(1));
thread_local Cache* t_cache = nullptr;

struct CacheOwner {
  ~CacheOwner() {
    if (t_cache && t_cache != kDead) {
      {
        std::lock_guard<std::mutex> lock(g_registry_mutex);
        auto& caches = registry();
        caches.erase(std::find(caches.begin(), caches.end(), t_cache));
        g_retired_hits += t_cache->hits.get();
      }
      t_cache->release_all();
      delete t_cache;
    }
    t_cache = kDead;
  }
};
thread_local CacheOwner t_owner;

__attribute__((noinline)) Cache* create_thread_cache() {
  auto* cache = new Cache();
  {
    std::lock_guard<std::mutex> lock(g_registry_mutex);
    registry().push_back(cache);
  }
  t_cache = cache;
  (void)&t_owner;  // odr-use: registers the owner's destructor for this thread
  return cache;
}

inline Cache* thread_cache() {
  Cache* c = t_cache;
  if (__builtin_expect(c == nullptr, 0)) return create_thread_cache();
  return c == kDead ? nullptr : c;
}

}  // namespace

void* allocate(size_t nbytes) {
  if (nbytes > (size_t(1) << 62)) throw std::bad_alloc();  // no system has it; keeps the classes' math in range
  SizeClass sc = size_class(nbytes);
  if (sc.index < kMaxClasses) {
    if (Cache* cache = thread_cache()) {
      if (void* p = cache->free[sc.index].pop()) {
        cache->bytes.sub(sc.capacity);
        cache->hits.add(1);
        return p;
      }
    }
  }
  return system_allocate(sc.capacity);
}

void deallocate(void* p, size_t nbytes) noexcept {
  if (!p) return;
  SizeClass sc = size_class(nbytes);
  size_t limit = g_cache_limit.load(std::memory_order_relaxed);
  // A block above a quarter of the limit goes back at once: caching it would
  // evict many small ones, and malloc already reuses big blocks well.
  Cache* cache = sc.index < kMaxClasses && sc.capacity <= limit / 4 ? thread_cache() : nullptr;
  if (cache && cache->bytes.get() + sc.capacity <= limit) {
    cache->free[sc.index].push(p);
    cache->bytes.add(sc.capacity);
    return;
  }
  system_free(p);
}

Stats stats() {
  Stats s;
  s.system_allocations = g_system_allocations.load(std::memory_order_relaxed);
  s.system_frees = g_system_frees.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  s.cache_hits = g_retired_hits;
  s.bytes_cached = 0;
  for (const Cache* c : registry()) {
    s.cache_hits += c->hits.get();
    s.bytes_cached += c->bytes.get();
  }
  return s;
}

void empty_cache() {
  if (Cache* cache = thread_cache()) cache->release_all();
}

size_t cache_limit() { return g_cache_limit.load(std::memory_order_relaxed); }
void set_cache_limit(size_t bytes) {
  g_cache_limit.store(bytes, std::memory_order_relaxed);
  if (Cache* cache = thread_cache(); cache && cache->bytes.get() > bytes) cache->release_all();
}

}  // namespace tg::memory
