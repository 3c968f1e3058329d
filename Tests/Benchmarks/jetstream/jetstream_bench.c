// The NATS JetStream side of Tests/Benchmarks/queue.sh: the same 256-byte events, file storage, measured the way
// queue-bench measures ours. Prints one JSON line per measurement.
//   jetstream_bench URL SECONDS
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char payload[256];
static jsCtx *js;
static double deadline;

static void *sync_publisher(void *arg) {
    long *count = arg;
    jsErrCode err = 0;
    while (now_seconds() < deadline) {
        jsPubAck *ack = NULL;
        if (js_Publish(&ack, js, "bench.events", payload, sizeof payload, NULL, &err) != NATS_OK) {
            fprintf(stderr, "js_Publish failed: %d\n", err);
            exit(1);
        }
        jsPubAck_Destroy(ack);
        (*count)++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: jetstream_bench URL SECONDS\n");
        return 64;
    }
    double seconds = atof(argv[2]);
    memset(payload, 'x', sizeof payload);
    natsConnection *connection = NULL;
    if (natsConnection_ConnectTo(&connection, argv[1]) != NATS_OK) {
        fprintf(stderr, "cannot connect to %s\n", argv[1]);
        return 1;
    }
    jsOptions options;
    jsOptions_Init(&options);
    options.PublishAsync.MaxPending = 4000;
    natsConnection_JetStream(&js, connection, &options);
    jsStreamConfig stream;
    jsStreamConfig_Init(&stream);
    stream.Name = "BENCH";
    const char *subjects[] = {"bench.>"};
    stream.Subjects = subjects;
    stream.SubjectsLen = 1;
    stream.Storage = js_FileStorage;
    jsErrCode err = 0;
    jsStreamInfo *info = NULL;
    if (js_AddStream(&info, js, &stream, NULL, &err) != NATS_OK) {
        fprintf(stderr, "js_AddStream failed: %d\n", err);
        return 1;
    }
    jsStreamInfo_Destroy(info);

    int publisher_counts[] = {1, 8, 64};
    for (int round = 0; round < 3; round++) {
        int publishers = publisher_counts[round];
        pthread_t threads[64];
        long counts[64] = {0};
        double started = now_seconds();
        deadline = started + seconds;
        for (int i = 0; i < publishers; i++) pthread_create(&threads[i], NULL, sync_publisher, &counts[i]);
        long total = 0;
        for (int i = 0; i < publishers; i++) {
            pthread_join(threads[i], NULL);
            total += counts[i];
        }
        double elapsed = now_seconds() - started;
        printf("{\"measure\":\"jetstream sync publish\",\"publishers\":%d,\"events_per_s\":%.1f,\"events\":%ld}\n",
               publishers, total / elapsed, total);
        fflush(stdout);
    }

    long sent = 0;
    double started = now_seconds();
    deadline = started + seconds;
    while (now_seconds() < deadline) {
        for (int i = 0; i < 1000; i++) {
            if (js_PublishAsync(js, "bench.events", payload, sizeof payload, NULL) != NATS_OK) {
                fprintf(stderr, "js_PublishAsync failed\n");
                return 1;
            }
        }
        sent += 1000;
    }
    jsPubOptions complete;
    jsPubOptions_Init(&complete);
    complete.MaxWait = 60000;
    js_PublishAsyncComplete(js, &complete);
    double elapsed = now_seconds() - started;
    printf("{\"measure\":\"jetstream async publish (4,000 in flight)\",\"events_per_s\":%.1f,\"events\":%ld}\n",
           sent / elapsed, sent);
    fflush(stdout);

    jsSubOptions subscription_options;
    jsSubOptions_Init(&subscription_options);
    subscription_options.Config.AckPolicy = js_AckNone;
    natsSubscription *subscription = NULL;
    if (js_PullSubscribe(&subscription, js, "bench.>", "reader", NULL, &subscription_options, &err) != NATS_OK) {
        fprintf(stderr, "js_PullSubscribe failed: %d\n", err);
        return 1;
    }
    long read = 0;
    started = now_seconds();
    for (;;) {
        natsMsgList list = {0};
        natsStatus status = natsSubscription_Fetch(&list, subscription, 4096, 1000, &err);
        if (status != NATS_OK || list.Count == 0) {
            natsMsgList_Destroy(&list);
            break;
        }
        read += list.Count;
        natsMsgList_Destroy(&list);
    }
    elapsed = now_seconds() - started - 1.0;  // the last fetch waited its 1 s timeout for more
    printf("{\"measure\":\"jetstream consume (pull fetch)\",\"events_per_s\":%.1f,\"events\":%ld}\n",
           read / (elapsed > 0 ? elapsed : 1e-9), read);
    natsSubscription_Destroy(subscription);
    jsCtx_Destroy(js);
    natsConnection_Destroy(connection);
    return 0;
}
