#include "netreach_qt.h"

#include <QMetaObject>

namespace {

QString lastError() { return QString::fromUtf8(netreach_last_error_message()); }

}  // namespace

NetReachInformation::NetReachInformation(const Options &options, QObject *parent) : QObject(parent) {
    NetreachOptions *o = netreach_options_new();
    bool ok = true;
    if (!options.netns.isEmpty())
        ok = ok && netreach_options_set_netns(o, options.netns.toUtf8().constData()) == NETREACH_STATUS_OK;
    ok = ok && netreach_options_set_backend(o, options.backend) == NETREACH_STATUS_OK;
    if (!options.systemBusAddress.isEmpty())
        ok = ok && netreach_options_set_system_bus_address(o, options.systemBusAddress.toUtf8().constData()) == NETREACH_STATUS_OK;
    ok = ok && netreach_monitor_new(o, &m_monitor) == NETREACH_STATUS_OK;
    netreach_options_free(o);
    if (!ok) {
        m_error = lastError();
        return;
    }
    NetreachState *state = nullptr;
    if (netreach_monitor_state(m_monitor, &state) == NETREACH_STATUS_OK) {
        m_state = read(state);
        netreach_state_free(state);
    }
    if (netreach_monitor_subscribe(m_monitor, &NetReachInformation::onEvent, this, &m_subscription) != NETREACH_STATUS_OK)
        m_error = lastError();
}

NetReachInformation::~NetReachInformation() {
    // After this returns no callback runs or starts; calls already queued to this object are
    // dropped by Qt with the object.
    netreach_subscription_free(m_subscription);
    netreach_monitor_free(m_monitor);
}

NetReachInformation::State NetReachInformation::read(const NetreachState *state) {
    State s;
    NetreachLevel level = NETREACH_LEVEL_UNKNOWN;
    netreach_state_level(state, NETREACH_FAMILY_OVERALL, &level, nullptr);
    s.reachability = static_cast<Reachability>(level);  // same order as Qt's enum
    s.captivePortal = netreach_state_captive_portal(state) == NETREACH_TRISTATE_YES;
    s.metered = netreach_state_metered(state) == NETREACH_TRISTATE_YES;
    switch (netreach_state_transport(state)) {
    case NETREACH_TRANSPORT_ETHERNET: s.transport = TransportMedium::Ethernet; break;
    case NETREACH_TRANSPORT_WIFI: s.transport = TransportMedium::WiFi; break;
    case NETREACH_TRANSPORT_CELLULAR: s.transport = TransportMedium::Cellular; break;
    case NETREACH_TRANSPORT_BLUETOOTH: s.transport = TransportMedium::Bluetooth; break;
    default: s.transport = TransportMedium::Unknown; break;
    }
    size_t len = 0;
    if (const char *url = netreach_state_portal_url(state, &len))
        s.portalUrl = QString::fromUtf8(url, static_cast<qsizetype>(len));
    return s;
}

// On netreach's thread: read what changed, copy it, queue it to the object's thread.
void NetReachInformation::onEvent(const NetreachEvent *event, void *self) {
    auto *info = static_cast<NetReachInformation *>(self);
    NetreachState *state = nullptr;
    switch (netreach_event_type(event)) {
    case NETREACH_EVENT_TYPE_BASELINE:
        netreach_event_state(event, &state);
        break;
    case NETREACH_EVENT_TYPE_REACHABILITY_CHANGED:
    case NETREACH_EVENT_TYPE_DETAILS_CHANGED:
        netreach_monitor_state(info->m_monitor, &state);
        break;
    default:
        return;
    }
    if (!state) return;
    State next = read(state);
    netreach_state_free(state);
    QMetaObject::invokeMethod(info, [info, next] { info->apply(next); }, Qt::QueuedConnection);
}

void NetReachInformation::apply(const State &next) {
    State before = m_state;
    m_state = next;
    if (next.reachability != before.reachability) emit reachabilityChanged(next.reachability);
    if (next.captivePortal != before.captivePortal) emit isBehindCaptivePortalChanged(next.captivePortal);
    if (next.transport != before.transport) emit transportMediumChanged(next.transport);
    if (next.metered != before.metered) emit isMeteredChanged(next.metered);
}

NetReachConnectionMonitor::NetReachConnectionMonitor(NetReachInformation *information, QObject *parent)
    : QObject(parent), m_information(information) {}

NetReachConnectionMonitor::~NetReachConnectionMonitor() { stopMonitoring(); }

bool NetReachConnectionMonitor::setTargets(const QHostAddress &local, const QHostAddress &remote) {
    if (isMonitoring()) {
        m_error = QStringLiteral("stop monitoring before changing the targets");
        return false;
    }
    m_local = local;
    m_remote = remote;
    return true;
}

bool NetReachConnectionMonitor::startMonitoring() {
    if (isMonitoring()) return true;
    if (!m_information || !m_information->monitor()) {
        m_error = QStringLiteral("no running NetReachInformation");
        return false;
    }
    const QByteArray local = m_local.toString().toUtf8(), remote = m_remote.toString().toUtf8();
    if (netreach_monitor_watch_path(m_information->monitor(), local.constData(), remote.constData(),
                                    &NetReachConnectionMonitor::onStatus, this, &m_path) != NETREACH_STATUS_OK) {
        m_error = lastError();
        return false;
    }
    // The first status came synchronously (queued like the rest); take it now too, so that
    // isReachable() is right as soon as this returns.
    NetreachPathStatus *status = nullptr;
    if (netreach_path_status(m_path, &status) == NETREACH_STATUS_OK) {
        m_reachable = netreach_path_status_reachable(status) != 0;
        const char *why = netreach_path_status_reason(status);
        m_reason = why ? QString::fromUtf8(why) : QString();
        netreach_path_status_free(status);
    }
    return true;
}

void NetReachConnectionMonitor::stopMonitoring() {
    netreach_path_free(m_path);
    m_path = nullptr;
}

// On netreach's thread (the first call on the caller's): copy, queue to the object's thread.
void NetReachConnectionMonitor::onStatus(const NetreachPathStatus *status, void *self) {
    auto *monitor = static_cast<NetReachConnectionMonitor *>(self);
    const bool reachable = netreach_path_status_reachable(status) != 0;
    const char *why = netreach_path_status_reason(status);
    const QString reason = why ? QString::fromUtf8(why) : QString();
    QMetaObject::invokeMethod(monitor, [monitor, reachable, reason] { monitor->apply(reachable, reason); },
                              Qt::QueuedConnection);
}

void NetReachConnectionMonitor::apply(bool reachable, const QString &reason) {
    m_reason = reason;
    if (reachable == m_reachable) return;
    m_reachable = reachable;
    emit reachabilityChanged(reachable);
}
