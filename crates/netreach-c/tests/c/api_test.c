/* Exercises every function of netreach.h against a real namespace, including bad input and
 * teardown from inside callbacks. Built and run (under AddressSanitizer/LeakSanitizer) by
 * tests/c_api.rs:
 *   api_test NAMESPACE
 * NAMESPACE is made by the Rust test with testns::uplinks: va 192.0.2.10/24 (peer vb up),
 * wa 198.51.100.10/24, default routes via va. This program takes vb down to cause events.
 * Prints one line per check and ends with "N passed, N failed"; exits 1 on any failure. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netreach.h>

static _Atomic int passed, failed; /* callbacks check on other threads */

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (cond) {                                                                            \
            passed++;                                                                          \
        } else {                                                                               \
            failed++;                                                                          \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                             \
            printf(__VA_ARGS__);                                                               \
            printf(" (last error %d: %s)\n", netreach_last_error_code(), netreach_last_error_message()); \
        }                                                                                      \
    } while (0)

/* A refused call: the status and a message that names the problem. */
#define REFUSED(call, status, needle)                                                          \
    do {                                                                                       \
        NetreachStatus got_ = (call);                                                          \
        CHECK(got_ == (status), "%s gave %d", #call, got_);                                    \
        CHECK(strstr(netreach_last_error_message(), (needle)) != NULL, "%s: message lacks '%s'", #call, (needle)); \
    } while (0)

/* What callbacks saw, guarded by one lock; waits are bounded (10 s). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

struct seen {
    int events, baselines, v4_down, bad_thread_calls;
    int path_calls, path_unreachable;
    char path_reason[64];
    int self_free_calls, path_self_free_calls, monitor_free_calls, check_refused;
};
static struct seen seen;

static void with_lock_signal(void) { pthread_cond_broadcast(&changed); pthread_mutex_unlock(&lock); }

/* Waits until *counter >= want (bounded). */
static int wait_for(const int *counter, int want) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&lock);
    int rc = 0;
    while (*counter < want && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&changed, &lock, &deadline);
    int ok = *counter >= want;
    pthread_mutex_unlock(&lock);
    return ok;
}

static pthread_t main_thread;

/* Handing an object made by the main thread to its own callback. The main thread must not hold
 * `lock` while it calls netreach (watch_path waits for the monitor's thread, which may be in
 * a callback waiting for `lock`), so the callback waits (bounded) until the handle is there. */
static void *take_when_set(void **handle) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&lock);
    int rc = 0;
    while (*handle == NULL && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&changed, &lock, &deadline);
    void *taken = *handle;
    *handle = NULL;
    pthread_mutex_unlock(&lock);
    return taken;
}

static void hand_over(void **handle, void *value) {
    pthread_mutex_lock(&lock);
    *handle = value;
    with_lock_signal();
}

static void on_event(const NetreachEvent *event, void *user_data) {
    CHECK(user_data == &seen, "user_data handed back");
    NetreachEventType type = netreach_event_type(event);
    const char *json = netreach_event_json(event, NULL);
    CHECK(json != NULL && strstr(json, "\"type\"") != NULL, "event JSON %s", json ? json : "(null)");
    pthread_mutex_lock(&lock);
    seen.events++;
    if (pthread_equal(pthread_self(), main_thread)) seen.bad_thread_calls++;
    if (type == NETREACH_EVENT_TYPE_BASELINE) {
        NetreachState *state = NULL;
        CHECK(netreach_event_state(event, &state) == NETREACH_STATUS_OK && state, "baseline state");
        netreach_state_free(state);
        seen.baselines++;
    } else {
        NetreachState *state = (NetreachState *)1;
        CHECK(netreach_event_state(event, &state) == NETREACH_STATUS_INVALID_INPUT && state == NULL, "state of a non-baseline");
    }
    NetreachFamily family;
    NetreachLevel old_level, new_level;
    NetreachSource source;
    NetreachStatus rc = netreach_event_reachability(event, &family, &old_level, &new_level, &source);
    CHECK((rc == NETREACH_STATUS_OK) == (type == NETREACH_EVENT_TYPE_REACHABILITY_CHANGED), "reachability of type %d", type);
    if (rc == NETREACH_STATUS_OK && family == NETREACH_FAMILY_IPV4 && old_level == NETREACH_LEVEL_ONLINE && new_level < NETREACH_LEVEL_ONLINE) {
        CHECK(source == NETREACH_SOURCE_KERNEL, "source %s", netreach_source_name(source));
        CHECK(strstr(json, "\"reachability_changed\"") && strstr(json, "\"ipv4\""), "JSON %s", json);
        seen.v4_down++;
    }
    CHECK(netreach_event_error(event, NULL) == NULL || type == NETREACH_EVENT_TYPE_ERROR, "error text only on errors");
    with_lock_signal();
}

static void *self_freeing;
static void on_event_free_self(const NetreachEvent *event, void *user_data) {
    (void)event;
    (void)user_data;
    NetreachSubscription *mine = take_when_set(&self_freeing);
    pthread_mutex_lock(&lock);
    seen.self_free_calls++;
    pthread_mutex_unlock(&lock);
    netreach_subscription_free(mine); /* its own subscription, from inside: returns at once */
    pthread_mutex_lock(&lock);
    with_lock_signal();
}

static void on_path(const NetreachPathStatus *status, void *user_data) {
    CHECK(user_data == &seen, "path user_data");
    const char *json = netreach_path_status_json(status, NULL);
    CHECK(json && strstr(json, "\"remote\":\"203.0.113.1\""), "path JSON %s", json ? json : "(null)");
    pthread_mutex_lock(&lock);
    seen.path_calls++;
    if (!netreach_path_status_reachable(status)) {
        const char *reason = netreach_path_status_reason(status);
        snprintf(seen.path_reason, sizeof seen.path_reason, "%s", reason ? reason : "(null)");
        seen.path_unreachable++;
    } else {
        CHECK(netreach_path_status_reason(status) == NULL, "no reason while reachable");
        size_t len = 0;
        const char *via = netreach_path_status_interface(status, &len);
        CHECK(via && len == 2 && strcmp(via, "va") == 0, "via %s", via ? via : "(null)");
    }
    with_lock_signal();
}

static void *self_freeing_path;
static void on_path_free_self(const NetreachPathStatus *status, void *user_data) {
    (void)user_data;
    if (netreach_path_status_reachable(status)) return; /* the first call, during watch_path */
    NetreachPath *mine = take_when_set(&self_freeing_path);
    pthread_mutex_lock(&lock);
    seen.path_self_free_calls++;
    pthread_mutex_unlock(&lock);
    netreach_path_free(mine);
    pthread_mutex_lock(&lock);
    with_lock_signal();
}

static void *doomed;
static void on_event_free_monitor(const NetreachEvent *event, void *user_data) {
    (void)event;
    (void)user_data;
    NetreachMonitor *mine = take_when_set(&doomed);
    NetreachState *state = (NetreachState *)1;
    NetreachStatus rc = netreach_monitor_check(mine, &state);
    NetreachPath *path = (NetreachPath *)1;
    NetreachStatus path_rc = netreach_monitor_watch_path(mine, "192.0.2.10", "203.0.113.1", NULL, NULL, &path);
    pthread_mutex_lock(&lock);
    if (rc == NETREACH_STATUS_INVALID_INPUT && state == NULL) seen.check_refused++;
    if (path_rc == NETREACH_STATUS_INVALID_INPUT && path == NULL) seen.check_refused++;
    seen.monitor_free_calls++;
    pthread_mutex_unlock(&lock);
    netreach_monitor_free(mine); /* the whole monitor, from inside its own callback */
    pthread_mutex_lock(&lock);
    with_lock_signal();
}

static void bad_input(void) {
    NetreachMonitor *monitor = (NetreachMonitor *)1;
    REFUSED(netreach_monitor_new(NULL, NULL), NETREACH_STATUS_INVALID_INPUT, "out is NULL");
    NetreachOptions *options = netreach_options_new();
    CHECK(options != NULL, "options");
    REFUSED(netreach_options_set_netns(NULL, "x"), NETREACH_STATUS_INVALID_INPUT, "options is NULL");
    REFUSED(netreach_options_set_netns(options, NULL), NETREACH_STATUS_INVALID_INPUT, "netns is NULL");
    REFUSED(netreach_options_set_netns(options, ""), NETREACH_STATUS_INVALID_INPUT, "netns is empty");
    REFUSED(netreach_options_set_netns(options, "\xff"), NETREACH_STATUS_INVALID_INPUT, "not UTF-8");
    REFUSED(netreach_options_set_backend(options, 42), NETREACH_STATUS_INVALID_INPUT, "unknown backend 42");
    REFUSED(netreach_options_add_probe_url(options, "https://192.0.2.1/", 0), NETREACH_STATUS_INVALID_INPUT, "http");
    REFUSED(netreach_options_add_probe_url(options, "http://192.0.2.1/", 42), NETREACH_STATUS_INVALID_INPUT, "42");
    REFUSED(netreach_options_add_probe_url(options, NULL, 0), NETREACH_STATUS_INVALID_INPUT, "url is NULL");
    REFUSED(netreach_options_set_probe_timeout_ms(options, 0), NETREACH_STATUS_INVALID_INPUT, "above 0");
    REFUSED(netreach_options_set_system_bus_address(options, NULL), NETREACH_STATUS_INVALID_INPUT, "address is NULL");
    CHECK(netreach_options_set_netns(options, "netreach-c-test-no-such-namespace") == NETREACH_STATUS_OK, "set netns");
    REFUSED(netreach_monitor_new(options, &monitor), NETREACH_STATUS_NOT_FOUND, "netreach-c-test-no-such-namespace");
    CHECK(monitor == NULL, "no half-built monitor");
    CHECK(netreach_last_error_code() == NETREACH_STATUS_NOT_FOUND, "last code");
    netreach_options_free(options);

    NetreachState *state = (NetreachState *)1;
    REFUSED(netreach_monitor_state(NULL, &state), NETREACH_STATUS_INVALID_INPUT, "monitor is NULL");
    CHECK(state == NULL, "out cleared on failure");
    REFUSED(netreach_monitor_check(NULL, &state), NETREACH_STATUS_INVALID_INPUT, "monitor is NULL");
    REFUSED(netreach_monitor_subscribe(NULL, on_event, NULL, NULL), NETREACH_STATUS_INVALID_INPUT, "monitor is NULL");
    REFUSED(netreach_state_level(NULL, NETREACH_FAMILY_IPV4, NULL, NULL), NETREACH_STATUS_INVALID_INPUT, "state is NULL");
    CHECK(netreach_state_transport(NULL) == NETREACH_TRANSPORT_UNKNOWN, "transport of NULL");
    CHECK(netreach_state_metered(NULL) == NETREACH_TRISTATE_UNKNOWN, "metered of NULL");
    CHECK(netreach_state_captive_portal(NULL) == NETREACH_TRISTATE_UNKNOWN, "portal of NULL");
    CHECK(netreach_state_portal_url(NULL, NULL) == NULL, "portal URL of NULL");
    CHECK(netreach_state_json(NULL, NULL) == NULL, "JSON of NULL");
    CHECK(netreach_state_reason(NULL, NETREACH_FAMILY_IPV4) == NULL, "reason of NULL");
    CHECK(netreach_event_type(NULL) == NETREACH_EVENT_TYPE_OTHER, "type of NULL");
    CHECK(netreach_event_json(NULL, NULL) == NULL, "event JSON of NULL");
    CHECK(netreach_event_error(NULL, NULL) == NULL, "event error of NULL");
    REFUSED(netreach_event_reachability(NULL, NULL, NULL, NULL, NULL), NETREACH_STATUS_INVALID_INPUT, "event is NULL");
    REFUSED(netreach_event_state(NULL, &state), NETREACH_STATUS_INVALID_INPUT, "event is NULL");
    NetreachPathStatus *path_status = (NetreachPathStatus *)1;
    REFUSED(netreach_path_status(NULL, &path_status), NETREACH_STATUS_INVALID_INPUT, "path is NULL");
    CHECK(path_status == NULL, "path status out cleared");
    CHECK(netreach_path_status_reachable(NULL) == 0, "reachable of NULL");
    CHECK(netreach_path_status_reason(NULL) == NULL && netreach_path_status_interface(NULL, NULL) == NULL, "NULL status");
    CHECK(netreach_path_status_json(NULL, NULL) == NULL, "path JSON of NULL");
    CHECK(strcmp(netreach_level_name(NETREACH_LEVEL_SITE), "site") == 0, "level name");
    CHECK(strcmp(netreach_level_name(-7), "invalid") == 0, "bad level name");
    CHECK(strcmp(netreach_source_name(NETREACH_SOURCE_NETWORKMANAGER), "networkmanager") == 0, "source name");
    CHECK(strcmp(netreach_source_name(1000), "invalid") == 0, "bad source name");
    CHECK(strcmp(netreach_transport_name(NETREACH_TRANSPORT_WIFI), "wifi") == 0, "transport name");
    CHECK(strcmp(netreach_transport_name(77), "invalid") == 0, "bad transport name");
    /* Freeing NULL is a no-op everywhere. */
    netreach_options_free(NULL);
    netreach_monitor_free(NULL);
    netreach_subscription_free(NULL);
    netreach_path_free(NULL);
    netreach_state_free(NULL);
    netreach_path_status_free(NULL);
}

static void bad_paths(NetreachMonitor *monitor) {
    NetreachPath *path = (NetreachPath *)1;
    REFUSED(netreach_monitor_watch_path(monitor, "192.0.2.10", "2001:db8::1", NULL, NULL, &path), NETREACH_STATUS_INVALID_INPUT, "famil");
    CHECK(path == NULL, "no path on failure");
    REFUSED(netreach_monitor_watch_path(monitor, "192.0.2.10", "bogus", NULL, NULL, &path), NETREACH_STATUS_INVALID_INPUT, "'bogus' is not an IP address");
    REFUSED(netreach_monitor_watch_path(monitor, NULL, "203.0.113.1", NULL, NULL, &path), NETREACH_STATUS_INVALID_INPUT, "local is NULL");
    REFUSED(netreach_monitor_watch_path(monitor, "127.0.0.1", "203.0.113.1", NULL, NULL, &path), NETREACH_STATUS_INVALID_INPUT, "loopback");
    REFUSED(netreach_monitor_watch_path(monitor, "203.0.113.99", "198.51.100.1", NULL, NULL, &path), NETREACH_STATUS_INVALID_INPUT, "203.0.113.99");
    REFUSED(netreach_monitor_watch_path(NULL, "192.0.2.10", "203.0.113.1", NULL, NULL, &path), NETREACH_STATUS_INVALID_INPUT, "monitor is NULL");
    REFUSED(netreach_monitor_watch_path(monitor, "192.0.2.10", "203.0.113.1", NULL, NULL, NULL), NETREACH_STATUS_INVALID_INPUT, "out is NULL");
    NetreachSubscription *sub = (NetreachSubscription *)1;
    REFUSED(netreach_monitor_subscribe(monitor, NULL, NULL, &sub), NETREACH_STATUS_INVALID_INPUT, "callback is NULL");
    CHECK(sub == NULL, "no subscription on failure");
}

static void read_state(NetreachMonitor *monitor) {
    NetreachState *state = NULL;
    CHECK(netreach_monitor_state(monitor, &state) == NETREACH_STATUS_OK && state, "state");
    NetreachLevel level = NETREACH_LEVEL_UNKNOWN;
    NetreachSource source = NETREACH_SOURCE_OTHER;
    CHECK(netreach_state_level(state, NETREACH_FAMILY_IPV4, &level, &source) == NETREACH_STATUS_OK, "ipv4 level");
    CHECK(level == NETREACH_LEVEL_ONLINE && source == NETREACH_SOURCE_KERNEL, "ipv4 %s (%s)", netreach_level_name(level), netreach_source_name(source));
    CHECK(netreach_state_level(state, NETREACH_FAMILY_OVERALL, &level, NULL) == NETREACH_STATUS_OK && level == NETREACH_LEVEL_ONLINE, "overall");
    REFUSED(netreach_state_level(state, 5, &level, NULL), NETREACH_STATUS_INVALID_INPUT, "unknown family 5");
    CHECK(netreach_state_reason(state, 5) == NULL, "reason of a bad family");
    CHECK(netreach_state_transport(state) == NETREACH_TRANSPORT_ETHERNET, "transport %s", netreach_transport_name(netreach_state_transport(state)));
    CHECK(netreach_state_metered(state) == NETREACH_TRISTATE_UNKNOWN, "metered");
    CHECK(netreach_state_captive_portal(state) == NETREACH_TRISTATE_UNKNOWN, "portal");
    size_t len = 99;
    CHECK(netreach_state_portal_url(state, &len) == NULL && len == 99, "no portal URL");
    const char *json = netreach_state_json(state, &len);
    CHECK(json && len == strlen(json) && strstr(json, "\"name\":\"va\"") && strstr(json, "\"default_routes\""), "state JSON");
    /* Reasons are read from the JSON: the code of the family's reason, as the JSON says it. */
    const char *reason = netreach_state_reason(state, NETREACH_FAMILY_IPV4);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"code\":\"%s\"", reason ? reason : "(none)");
    CHECK(reason && strstr(json, quoted), "ipv4 reason %s", reason ? reason : "(none)");
    CHECK(netreach_state_reason(state, NETREACH_FAMILY_OVERALL) != NULL, "overall reason");
    netreach_state_free(state);

    CHECK(netreach_monitor_check(monitor, &state) == NETREACH_STATUS_OK && state, "check");
    CHECK(netreach_state_level(state, NETREACH_FAMILY_IPV4, &level, NULL) == NETREACH_STATUS_OK && level == NETREACH_LEVEL_ONLINE, "checked");
    netreach_state_free(state);
    REFUSED(netreach_monitor_check(monitor, NULL), NETREACH_STATUS_INVALID_INPUT, "out is NULL");
}

/* A monitor with the probe on: an endpoint inside the test's namespace where nobody answers
 * (documentation address, short timeout), so check() gives the probe's verdict at once. */
static void with_probe(const char *ns) {
    NetreachOptions *options = netreach_options_new();
    CHECK(netreach_options_set_netns(options, ns) == NETREACH_STATUS_OK, "netns");
    CHECK(netreach_options_set_backend(options, NETREACH_BACKEND_KERNEL) == NETREACH_STATUS_OK, "backend");
    CHECK(netreach_options_set_system_bus_address(options, "unix:path=/nonexistent") == NETREACH_STATUS_OK, "bus");
    CHECK(netreach_options_add_probe_url(options, "http://192.0.2.1:9/generate_204", 0) == NETREACH_STATUS_OK, "probe URL");
    CHECK(netreach_options_set_probe_timeout_ms(options, 300) == NETREACH_STATUS_OK, "probe timeout");
    NetreachMonitor *monitor = NULL;
    CHECK(netreach_monitor_new(options, &monitor) == NETREACH_STATUS_OK && monitor, "monitor with probe");
    netreach_options_free(options);
    NetreachState *state = NULL;
    CHECK(netreach_monitor_check(monitor, &state) == NETREACH_STATUS_OK && state, "check with probe");
    const char *json = netreach_state_json(state, NULL);
    CHECK(json && strstr(json, "\"verdicts\"") && strstr(json, "\"source\":\"probe\""), "probe verdict in %s", json ? json : "(null)");
    NetreachLevel level = NETREACH_LEVEL_ONLINE;
    CHECK(netreach_state_level(state, NETREACH_FAMILY_IPV4, &level, NULL) == NETREACH_STATUS_OK && level < NETREACH_LEVEL_ONLINE,
          "an unanswered probe keeps ipv4 below online (%s)", netreach_level_name(level));
    netreach_state_free(state);
    netreach_monitor_free(monitor);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s NAMESPACE\n", argv[0]);
        return 2;
    }
    const char *ns = argv[1];
    main_thread = pthread_self();
    bad_input();
    with_probe(ns);

    NetreachOptions *options = netreach_options_new();
    CHECK(netreach_options_set_netns(options, ns) == NETREACH_STATUS_OK, "netns");
    CHECK(netreach_options_set_backend(options, NETREACH_BACKEND_KERNEL) == NETREACH_STATUS_OK, "backend");
    NetreachMonitor *monitor = NULL, *second = NULL, *third = NULL;
    CHECK(netreach_monitor_new(options, &monitor) == NETREACH_STATUS_OK && monitor, "monitor");
    CHECK(netreach_monitor_new(options, &second) == NETREACH_STATUS_OK && second, "second monitor");
    CHECK(netreach_monitor_new(options, &third) == NETREACH_STATUS_OK && third, "third monitor");
    netreach_options_free(options); /* monitors keep what they need */
    if (!monitor || !second || !third) return 1;

    bad_paths(monitor);
    read_state(monitor);

    NetreachSubscription *sub = NULL, *doomed_sub = NULL, *orphan_sub = NULL;
    CHECK(netreach_monitor_subscribe(monitor, on_event, &seen, &sub) == NETREACH_STATUS_OK, "subscribe");
    NetreachSubscription *self_sub = NULL;
    CHECK(netreach_monitor_subscribe(monitor, on_event_free_self, NULL, &self_sub) == NETREACH_STATUS_OK, "self-freeing");
    hand_over(&self_freeing, self_sub);
    CHECK(netreach_monitor_subscribe(second, on_event_free_monitor, NULL, &doomed_sub) == NETREACH_STATUS_OK, "doomed");
    hand_over(&doomed, second);
    CHECK(netreach_monitor_subscribe(third, on_event, &seen, &orphan_sub) == NETREACH_STATUS_OK, "orphan");

    NetreachPath *path = NULL, *orphan_path = NULL;
    CHECK(netreach_monitor_watch_path(monitor, "192.0.2.10", "203.0.113.1", on_path, &seen, &path) == NETREACH_STATUS_OK, "path");
    CHECK(seen.path_calls == 1, "first path call before watch_path returned (%d)", seen.path_calls);
    NetreachPath *self_path = NULL;
    CHECK(netreach_monitor_watch_path(monitor, "192.0.2.10", "203.0.113.1", on_path_free_self, NULL, &self_path) == NETREACH_STATUS_OK, "self-freeing path");
    hand_over(&self_freeing_path, self_path);
    CHECK(netreach_monitor_watch_path(third, "192.0.2.10", "203.0.113.1", NULL, NULL, &orphan_path) == NETREACH_STATUS_OK, "path without callback");
    NetreachPathStatus *path_status = NULL;
    CHECK(netreach_path_status(orphan_path, &path_status) == NETREACH_STATUS_OK && netreach_path_status_reachable(path_status), "path status");
    netreach_path_status_free(path_status);

    CHECK(wait_for(&seen.baselines, 2), "two baselines (monitor and third)");
    CHECK(wait_for(&seen.self_free_calls, 1), "self-freeing subscription called");
    CHECK(wait_for(&seen.monitor_free_calls, 1), "monitor freed from its callback");
    CHECK(seen.check_refused == 2, "check and watch_path from inside a callback refused");

    /* The third monitor goes first, with its subscription and path still live. */
    netreach_monitor_free(third);

    char command[256];
    snprintf(command, sizeof command, "ip -n %s link set dev vb down", ns);
    CHECK(system(command) == 0, "%s", command);
    CHECK(wait_for(&seen.v4_down, 1), "ipv4 online -> lower, from the kernel");
    CHECK(wait_for(&seen.path_unreachable, 1), "path unreachable");
    pthread_mutex_lock(&lock);
    CHECK(strcmp(seen.path_reason, "no_carrier") == 0, "path reason %s", seen.path_reason);
    CHECK(seen.bad_thread_calls == 0, "event callbacks on the monitor's thread");
    pthread_mutex_unlock(&lock);
    CHECK(wait_for(&seen.path_self_free_calls, 1), "self-freeing path called on the change");

    snprintf(command, sizeof command, "ip -n %s link set dev vb up", ns);
    CHECK(system(command) == 0, "%s", command);
    CHECK(wait_for(&seen.path_calls, 3), "path reachable again");
    pthread_mutex_lock(&lock);
    CHECK(seen.self_free_calls == 1, "a freed subscription is never called again (%d)", seen.self_free_calls);
    CHECK(seen.path_self_free_calls == 1, "a freed path is never called again (%d)", seen.path_self_free_calls);
    CHECK(seen.monitor_free_calls == 1, "a freed monitor never calls again (%d)", seen.monitor_free_calls);
    pthread_mutex_unlock(&lock);

    /* Monitor before its subscription and path; then the orphans of the freed monitors. */
    netreach_monitor_free(monitor);
    int events_after_free = seen.events;
    netreach_subscription_free(sub);
    netreach_path_free(path);
    netreach_subscription_free(doomed_sub);
    netreach_subscription_free(orphan_sub);
    netreach_path_free(orphan_path);
    CHECK(seen.events == events_after_free, "no event after the monitor was freed");

    printf("%d passed, %d failed\n", (int)passed, (int)failed);
    return failed ? 1 : 0;
}
