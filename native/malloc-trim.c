/*
 * malloc_trim for Warren (loaded by src/broker/allocator.ts when it was built; optional).
 *
 * glibc's malloc keeps freed memory in its heaps and gives back to the system only what is free
 * at a heap's top; memory freed in the middle of a heap stays resident until malloc_trim() is
 * called (it hands every free page back with madvise). Node's socket read buffers and message
 * bodies are malloc'd, so after a flood is consumed most of a few hundred MiB of heap can be free
 * yet resident, held up by a few live blocks above it. Warren calls trim() after it has released a
 * large amount of message memory (src/broker/memory.ts), never per message.
 */
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21 /* Linux 5.4; older kernels answer EINVAL */
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* trim(): true when memory was given back to the system; false otherwise, or when not on glibc. */
static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
  int released = 0;
#if defined(__GLIBC__)
  released = malloc_trim(0);
#endif
  napi_value result;
  napi_get_boolean(env, released != 0, &result);
  return result;
}

/* Parses a hexadecimal number at *p, leaving *p after it; false when there is none. */
static int parseHex(const char **p, unsigned long *out) {
  unsigned long v = 0;
  const char *s = *p;
  for (;; s++) {
    char c = *s;
    if (c >= '0' && c <= '9') v = (v << 4) | (unsigned long)(c - '0');
    else if (c >= 'a' && c <= 'f') v = (v << 4) | (unsigned long)(c - 'a' + 10);
    else break;
  }
  if (s == *p) return 0;
  *p = s;
  *out = v;
  return 1;
}

/*
 * Advises every read-only shared mapping of the file at `path` with `advice`; returns the bytes of
 * mapping advised. A /proc/self/maps line is "start-end perms offset dev inode   path": lines whose
 * end is not the path are skipped before anything is parsed (most name other files or none), and
 * the matched ones are parsed by hand (sscanf was most of the cost with thousands of them).
 *
 * LMDB maps its data file in 64 KiB chunks (remapChunks): thousands of mappings, mostly side by
 * side. One madvise per run of adjacent ones, not per mapping: each call that unmaps something
 * flushes the TLBs of every CPU running a thread of this process (an IPI each), which cost 5-70 ms
 * per drop with one call per chunk. Lines come in address order, and a mapping of anything else
 * between two of ours ends the run.
 */
static double adviseFileMappings(const char *path, size_t pathLength, int advice) {
  double advised = 0;
  FILE *maps = fopen("/proc/self/maps", "r");
  if (maps == NULL) return 0;
  char line[4096 + 256];
  /* The run of adjacent qualifying mappings not advised yet: [runStart, runEnd). */
  unsigned long runStart = 0, runEnd = 0;
  while (fgets(line, sizeof line, maps) != NULL) {
    size_t lineLength = strcspn(line, "\n");
    /* the path must be the whole last field: preceded by the blank that ends the inode column */
    if (lineLength <= pathLength || memcmp(line + lineLength - pathLength, path, pathLength) != 0 ||
        line[lineLength - pathLength - 1] != ' ')
      continue;
    const char *p = line;
    unsigned long start = 0, end = 0;
    if (!parseHex(&p, &start) || *p++ != '-' || !parseHex(&p, &end) || *p++ != ' ') continue;
    /* r--s: readable, not writable, shared */
    if (p[0] != 'r' || p[1] != '-' || p[3] != 's' || end <= start) continue;
    if (start == runEnd && runEnd != 0) {
      runEnd = end;
      continue;
    }
    if (runEnd > runStart && madvise((void *)runStart, runEnd - runStart, advice) == 0) advised += (double)(runEnd - runStart);
    runStart = start;
    runEnd = end;
  }
  if (runEnd > runStart && madvise((void *)runStart, runEnd - runStart, advice) == 0) advised += (double)(runEnd - runStart);
  fclose(maps);
  return advised;
}

/* The path argument of unmapFilePages/pageOutFilePages into `path`; its length, 0 when unusable. */
static size_t pathArgument(napi_env env, napi_callback_info info, char *path, size_t size) {
  size_t argc = 1;
  napi_value argv[1];
  size_t pathLength = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_string_utf8(env, argv[0], path, size, &pathLength) != napi_ok || pathLength >= size - 1)
    return 0;
  return pathLength;
}

static napi_value adviseFile(napi_env env, napi_callback_info info, int advice) {
  char path[4096];
  size_t pathLength = pathArgument(env, info, path, sizeof path);
  double advised = pathLength > 0 ? adviseFileMappings(path, pathLength, advice) : 0;
  napi_value result;
  napi_create_double(env, advised, &result);
  return result;
}

/*
 * unmapFilePages(path): unmaps from this process the resident pages of every read-only shared
 * mapping of the file at `path` (LMDB's data file), with madvise(MADV_DONTNEED); returns the bytes
 * of mapping advised. Reading a deep backlog back touches its whole data file, and every touched
 * page counted in Warren's RSS until the kernel needed the memory; RabbitMQ reads its message store
 * with read(2), so its RSS never holds them. The pages stay in the page cache (the next read of one
 * is a minor fault) and are clean: nothing is lost.
 *
 * DONTNEED zeroes anonymous memory: the caller must guarantee that no thread unmaps one of the
 * file's mappings while this runs, or an address read from /proc/self/maps could be reused by
 * anonymous memory before the advice. Warren calls it only while LMDB's writer thread waits for the
 * main thread inside a write transaction (src/store/lmdb-store.ts, whileWriterWaits). MADV_PAGEOUT
 * would be safe at any time, but it evicts the pages from the page cache as well, and a drain then
 * reads much of its data file twice (see src/broker/mapped-pages.ts).
 */
static napi_value UnmapFilePages(napi_env env, napi_callback_info info) {
  return adviseFile(env, info, MADV_DONTNEED);
}

/*
 * pageOutFilePages(path): as unmapFilePages with madvise(MADV_PAGEOUT), which is safe whatever other
 * threads do — it never changes memory contents (anonymous memory mapped at an address read from
 * /proc/self/maps is swapped out or, with no swap, left alone) — but evicts the pages from the page
 * cache too, so the next read of one goes to the disk. For when the writer thread is too long in
 * coming (src/broker/mapped-pages.ts). Kernels before 5.4 answer EINVAL and nothing is dropped.
 */
static napi_value PageOutFilePages(napi_env env, napi_callback_info info) {
  return adviseFile(env, info, MADV_PAGEOUT);
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "unmapFilePages", NAPI_AUTO_LENGTH, UnmapFilePages, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "unmapFilePages", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "pageOutFilePages", NAPI_AUTO_LENGTH, PageOutFilePages, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "pageOutFilePages", fn) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
