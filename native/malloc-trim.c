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

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
