// netreach-qt-console: the Qt bridge in a console program. Prints one line per signal, with
// whether it arrived on the Qt (main) thread and a CLOCK_MONOTONIC timestamp:
//   signal=reachabilityChanged value=Disconnected qt_thread=1 mono_ns=123456789
// Usage: netreach-qt-console [--netns NAME] [--backend auto|kernel|networkmanager] [--bus ADDRESS]
//                            [--path LOCAL REMOTE] [--qt-information] [--count N] [--timeout-ms MS]
// --qt-information also loads Qt's own QNetworkInformation (its default backend, e.g.
// NetworkManager) and prints its signals with source=qt, for comparison.
// Ends after N signal lines (--count), after MS milliseconds (--timeout-ms, exit 1), or never.
#include <QCoreApplication>
#include <QMetaEnum>
#include <QNetworkInformation>
#include <QThread>
#include <QTimer>

#include <cstdio>
#include <ctime>

#include "netreach_qt.h"

namespace {

long long monotonicNs() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

int remaining = -1;  // signal lines left before quitting; -1: no limit

template <typename Enum> QByteArray name(Enum value) {
    return QMetaEnum::fromType<Enum>().valueToKey(static_cast<int>(value));
}

void line(const char *source, const char *signal, const QByteArray &value) {
    const bool qtThread = QThread::currentThread() == qApp->thread();
    std::printf("source=%s signal=%s value=%s qt_thread=%d mono_ns=%lld\n", source, signal, value.constData(),
                qtThread ? 1 : 0, monotonicNs());
    std::fflush(stdout);
    if (remaining > 0 && --remaining == 0) QCoreApplication::quit();
}

}  // namespace

int main(int argc, char **argv) {
    QCoreApplication app(argc, argv);
    NetReachInformation::Options options;
    QString local, remote;
    bool qtInformation = false;
    int timeoutMs = 0;
    const QStringList args = app.arguments();
    for (int i = 1; i < args.size(); ++i) {
        const QString &a = args[i];
        auto value = [&]() -> QString {
            if (i + 1 >= args.size()) {
                std::fprintf(stderr, "%s needs a value\n", qPrintable(a));
                std::exit(2);
            }
            return args[++i];
        };
        if (a == "--netns") options.netns = value();
        else if (a == "--bus") options.systemBusAddress = value();
        else if (a == "--backend") {
            const QString b = value();
            options.backend = b == "kernel" ? NETREACH_BACKEND_KERNEL
                            : b == "networkmanager" ? NETREACH_BACKEND_NETWORKMANAGER
                            : b == "auto" ? NETREACH_BACKEND_AUTO : -1;
        } else if (a == "--path") { local = value(); remote = value(); }
        else if (a == "--qt-information") qtInformation = true;
        else if (a == "--count") remaining = value().toInt();
        else if (a == "--timeout-ms") timeoutMs = value().toInt();
        else {
            std::fprintf(stderr, "unknown argument %s\n", qPrintable(a));
            return 2;
        }
    }

    NetReachInformation info(options);
    if (!info.isValid()) {
        std::fprintf(stderr, "netreach: %s\n", qPrintable(info.errorString()));
        return 1;
    }
    QObject::connect(&info, &NetReachInformation::reachabilityChanged, [](auto r) { line("netreach", "reachabilityChanged", name(r)); });
    QObject::connect(&info, &NetReachInformation::isBehindCaptivePortalChanged, [](bool b) { line("netreach", "isBehindCaptivePortalChanged", b ? "true" : "false"); });
    QObject::connect(&info, &NetReachInformation::transportMediumChanged, [](auto t) { line("netreach", "transportMediumChanged", name(t)); });
    QObject::connect(&info, &NetReachInformation::isMeteredChanged, [](bool b) { line("netreach", "isMeteredChanged", b ? "true" : "false"); });

    NetReachConnectionMonitor path(&info);
    if (!local.isEmpty()) {
        if (!path.setTargets(QHostAddress(local), QHostAddress(remote)) || !path.startMonitoring()) {
            std::fprintf(stderr, "path: %s\n", qPrintable(path.errorString()));
            return 2;
        }
        QObject::connect(&path, &NetReachConnectionMonitor::reachabilityChanged, [&path](bool up) {
            line("netreach-path", "reachabilityChanged", up ? "true" : QByteArray("false:") + path.reason().toUtf8());
        });
    }

    if (qtInformation) {
        if (!QNetworkInformation::loadDefaultBackend()) {
            std::fprintf(stderr, "Qt: no QNetworkInformation backend\n");
            return 1;
        }
        auto *qt = QNetworkInformation::instance();
        QObject::connect(qt, &QNetworkInformation::reachabilityChanged, [](auto r) { line("qt", "reachabilityChanged", name(r)); });
        std::printf("qt backend=%s reachability=%s\n", qPrintable(qt->backendName()), name(qt->reachability()).constData());
    }

    std::printf("ready reachability=%s portal=%d transport=%s metered=%d path=%s\n", name(info.reachability()).constData(),
                info.isBehindCaptivePortal() ? 1 : 0, name(info.transportMedium()).constData(), info.isMetered() ? 1 : 0,
                local.isEmpty() ? "none" : path.isReachable() ? "reachable" : "unreachable");
    std::fflush(stdout);
    if (timeoutMs > 0) QTimer::singleShot(timeoutMs, [] { QCoreApplication::exit(1); });
    return remaining == 0 ? 0 : app.exec();
}
