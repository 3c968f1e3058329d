// Typed wrappers for libcurl's variadic calls: Swift cannot call C variadic functions, so each option kind
// gets a static inline function with a fixed signature. Keep this header free of _GNU_SOURCE (see STYLE.md).
#ifndef YUNZHEN_CCURL_SHIM_H
#define YUNZHEN_CCURL_SHIM_H

#include <curl/curl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

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

typedef int (*yz_curl_socket_callback)(CURL *easy, curl_socket_t socket, int what, void *userdata, void *socketdata);
typedef int (*yz_curl_timer_callback)(CURLM *multi, long timeout_ms, void *userdata);

static inline CURLMcode yz_multi_setopt_pointer(CURLM *handle, CURLMoption option, void *value) {
    return curl_multi_setopt(handle, option, value);
}

static inline CURLMcode yz_multi_setopt_socket_callback(CURLM *handle, yz_curl_socket_callback value) {
    return curl_multi_setopt(handle, CURLMOPT_SOCKETFUNCTION, value);
}

static inline CURLMcode yz_multi_setopt_timer_callback(CURLM *handle, yz_curl_timer_callback value) {
    return curl_multi_setopt(handle, CURLMOPT_TIMERFUNCTION, value);
}

// epoll, for the callout engine's event loop. `struct epoll_event` is packed on x86_64, which Swift cannot lay
// out, so these wrappers take and return plain values.

/// Registers (add = 1) or re-arms (add = 0) `fd` for reading and/or writing; returns 0 or -1 with errno.
static inline int yz_epoll_watch(int epoll, int fd, int readable, int writable, int add) {
    struct epoll_event event = {0};
    event.events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
    event.data.fd = fd;
    return epoll_ctl(epoll, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event);
}

static inline int yz_epoll_unwatch(int epoll, int fd) {
    struct epoll_event event = {0};
    return epoll_ctl(epoll, EPOLL_CTL_DEL, fd, &event);
}

/// Waits for up to `capacity` ready descriptors; each one's libcurl `CURL_CSELECT_*` mask goes to `masks`.
static inline int yz_epoll_wait(int epoll, int *fds, int *masks, int capacity, int timeout_ms) {
    struct epoll_event events[64];
    if (capacity > 64) capacity = 64;
    int ready = epoll_wait(epoll, events, capacity, timeout_ms);
    for (int index = 0; index < ready; index++) {
        fds[index] = events[index].data.fd;
        int mask = 0;
        if (events[index].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) mask |= CURL_CSELECT_IN;
        if (events[index].events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
        if (events[index].events & EPOLLERR) mask |= CURL_CSELECT_ERR;
        masks[index] = mask;
    }
    return ready;
}

/// The result code of a finished transfer (a union member Swift cannot name reliably).
static inline CURLcode yz_message_result(const CURLMsg *message) {
    return message->data.result;
}

#endif
