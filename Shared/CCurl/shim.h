// Typed wrappers for libcurl's variadic calls: Swift cannot call C variadic functions, so each option kind
// gets a static inline function with a fixed signature. Keep this header free of _GNU_SOURCE (see STYLE.md).
#ifndef YUNZHEN_CCURL_SHIM_H
#define YUNZHEN_CCURL_SHIM_H

#include <curl/curl.h>

typedef size_t (*yz_curl_data_callback)(char *buffer, size_t size, size_t count, void *userdata);

static inline CURLcode yz_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode yz_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode yz_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode yz_easy_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode yz_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode yz_easy_setopt_callback(CURL *handle, CURLoption option, yz_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode yz_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode yz_easy_getinfo_offset(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLMcode yz_multi_setopt_long(CURLM *handle, CURLMoption option, long value) {
    return curl_multi_setopt(handle, option, value);
}

/// The result code of a finished transfer (a union member Swift cannot name reliably).
static inline CURLcode yz_message_result(const CURLMsg *message) {
    return message->data.result;
}

#endif
