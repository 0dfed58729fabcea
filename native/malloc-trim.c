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

/*
 * dropFilePages(path): has the kernel reclaim from this process the resident pages of every
 * read-only shared mapping of the file at `path` (LMDB's data file), with madvise(MADV_PAGEOUT);
 * returns the bytes of mapping advised. Reading a deep backlog back touches its whole data file,
 * and every touched page counted in Warren's RSS until the kernel needed the memory; RabbitMQ reads
 * its message store with read(2), so its RSS never holds them. The pages are clean (LMDB writes
 * with pwrite and syncs on commit), so reclaiming them loses nothing: the next read of one reads
 * it back from the page cache or the disk.
 *
 * Why MADV_PAGEOUT and not MADV_DONTNEED: /proc/self/maps is read first and the advice given after,
 * and meanwhile LMDB's writer thread may unmap one of its 64 KiB chunks and another thread map
 * anonymous memory at that address. MADV_DONTNEED there would zero that memory (silent corruption);
 * MADV_PAGEOUT never changes contents: anonymous pages are swapped out or, with no swap, left
 * alone. Kernels before 5.4 answer EINVAL and nothing is dropped.
 */
static napi_value DropFilePages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char path[4096];
  size_t pathLength = 0;
  double advised = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 1 &&
      napi_get_value_string_utf8(env, argv[0], path, sizeof path, &pathLength) == napi_ok && pathLength > 0 &&
      pathLength < sizeof path - 1) {
    FILE *maps = fopen("/proc/self/maps", "r");
    if (maps != NULL) {
      char line[4096 + 256];
      /* The run of adjacent qualifying mappings not advised yet: [runStart, runEnd). */
      unsigned long runStart = 0, runEnd = 0;
      while (fgets(line, sizeof line, maps) != NULL) {
        /* Most lines name other files or none: compare the name at the line's end before parsing. */
        size_t lineLength = strcspn(line, "\n");
        if (lineLength <= pathLength || memcmp(line + lineLength - pathLength, path, pathLength) != 0) continue;
        unsigned long start = 0, end = 0;
        char perms[8] = {0};
        int pathAt = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &pathAt) < 3 || pathAt == 0) continue;
        char *name = line + pathAt;
        size_t nameLength = strcspn(name, "\n");
        if (nameLength != pathLength || memcmp(name, path, pathLength) != 0) continue;
        /* r--s: readable, not writable, shared */
        if (perms[1] != '-' || perms[3] != 's' || end <= start) continue;
        /*
         * LMDB maps its data file in 64 KiB chunks (remapChunks): thousands of mappings, mostly
         * side by side. One madvise per run of adjacent ones, not per mapping: each call that
         * unmaps something flushes the TLBs of every CPU running a thread of this process (an
         * IPI each), which cost 5-70 ms per drop with one call per chunk. Lines come in address
         * order, and a mapping of anything else between two of ours ends the run.
         */
        if (start == runEnd && runEnd != 0) {
          runEnd = end;
          continue;
        }
        if (runEnd > runStart && madvise((void *)runStart, runEnd - runStart, MADV_PAGEOUT) == 0) advised += (double)(runEnd - runStart);
        runStart = start;
        runEnd = end;
      }
      if (runEnd > runStart && madvise((void *)runStart, runEnd - runStart, MADV_PAGEOUT) == 0) advised += (double)(runEnd - runStart);
      fclose(maps);
    }
  }
  napi_value result;
  napi_create_double(env, advised, &result);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "dropFilePages", NAPI_AUTO_LENGTH, DropFilePages, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "dropFilePages", fn) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
