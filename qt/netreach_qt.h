// A Qt 6 bridge over netreach's C API (netreach.h), shaped like Qt's own classes so that an
// application can swap them in:
//   NetReachInformation        ~ QNetworkInformation   (reachability, captive portal,
//                                                       transport medium, metered)
//   NetReachConnectionMonitor  ~ QNetworkConnectionMonitor (one local -> remote path)
// netreach calls back on its own thread; every signal here is emitted on the thread the object
// lives in (its Qt event loop), queued from the callback, in the order netreach reported.
#pragma once

#include <QHostAddress>
#include <QObject>
#include <QString>

#include <netreach.h>

// How to start a NetReachInformation (outside the class: a nested struct with default
// member initializers cannot be a default argument of its own class).
struct NetReachOptions {
    QString netns;                          // empty: this process's namespace
    int backend = NETREACH_BACKEND_AUTO;    // NETREACH_BACKEND_*
    QString systemBusAddress;               // empty: the default system bus
};

// Reachability, captive portal, transport medium and metering of one network namespace.
// Signals fire on changes only, in this order within one change: reachability, captive
// portal, transport medium, metered.
class NetReachInformation : public QObject {
    Q_OBJECT
    Q_PROPERTY(Reachability reachability READ reachability NOTIFY reachabilityChanged)
    Q_PROPERTY(bool isBehindCaptivePortal READ isBehindCaptivePortal NOTIFY isBehindCaptivePortalChanged)
    Q_PROPERTY(TransportMedium transportMedium READ transportMedium NOTIFY transportMediumChanged)
    Q_PROPERTY(bool isMetered READ isMetered NOTIFY isMeteredChanged)

public:
    // QNetworkInformation::Reachability, same names and order.
    enum class Reachability { Unknown, Disconnected, Local, Site, Online };
    Q_ENUM(Reachability)
    // QNetworkInformation::TransportMedium, same names and order (a VPN is Unknown, as in Qt).
    enum class TransportMedium { Unknown, Ethernet, Cellular, WiFi, Bluetooth };
    Q_ENUM(TransportMedium)

    using Options = NetReachOptions;

    explicit NetReachInformation(const Options &options = {}, QObject *parent = nullptr);
    ~NetReachInformation() override;

    // False when the monitor could not start; errorString() says why.
    bool isValid() const { return m_monitor != nullptr; }
    QString errorString() const { return m_error; }

    Reachability reachability() const { return m_state.reachability; }
    bool isBehindCaptivePortal() const { return m_state.captivePortal; }
    TransportMedium transportMedium() const { return m_state.transport; }
    bool isMetered() const { return m_state.metered; }
    // The captive portal's URL when one is known (outside text: escape before printing).
    QString portalUrl() const { return m_state.portalUrl; }

    // The C monitor, for NetReachConnectionMonitor (owned by this object).
    NetreachMonitor *monitor() const { return m_monitor; }

signals:
    void reachabilityChanged(NetReachInformation::Reachability newReachability);
    void isBehindCaptivePortalChanged(bool state);
    void transportMediumChanged(NetReachInformation::TransportMedium current);
    void isMeteredChanged(bool isMetered);

private:
    struct State {
        Reachability reachability = Reachability::Unknown;
        bool captivePortal = false;
        TransportMedium transport = TransportMedium::Unknown;
        bool metered = false;
        QString portalUrl;
    };
    static State read(const NetreachState *state);
    static void onEvent(const NetreachEvent *event, void *self);
    void apply(const State &next);

    NetreachMonitor *m_monitor = nullptr;
    NetreachSubscription *m_subscription = nullptr;
    QString m_error;
    State m_state;
};

// Whether one connection's path (local -> remote) works, with QNetworkConnectionMonitor's
// calls. It uses the monitor of `information`, which must exist while monitoring starts.
class NetReachConnectionMonitor : public QObject {
    Q_OBJECT

public:
    explicit NetReachConnectionMonitor(NetReachInformation *information, QObject *parent = nullptr);
    ~NetReachConnectionMonitor() override;

    bool setTargets(const QHostAddress &local, const QHostAddress &remote);
    bool startMonitoring();
    bool isMonitoring() const { return m_path != nullptr; }
    void stopMonitoring();
    bool isReachable() const { return m_reachable; }
    // Why the path is unreachable (a netreach reason code such as "no_carrier"), else empty.
    QString reason() const { return m_reason; }
    QString errorString() const { return m_error; }

signals:
    void reachabilityChanged(bool isOnline);

private:
    static void onStatus(const NetreachPathStatus *status, void *self);
    void apply(bool reachable, const QString &reason);

    NetReachInformation *m_information;
    QHostAddress m_local, m_remote;
    NetreachPath *m_path = nullptr;
    bool m_reachable = false;
    QString m_reason, m_error;
};
