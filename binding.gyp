{
  "targets": [
    {
      "target_name": "flannelts",
      "sources": [
        "native/addon.cc",
        "native/engine.cc",
        "native/capture.cc",
        "native/engine_js.cc",
        "native/tun.cc",
        "native/udp.cc",
        "native/routes.cc",
        "native/encap.cc",
        "native/vxlan.cc",
        "native/vxlan_js.cc",
        "native/offload.cc",
        "native/offload_js.cc",
        "native/netlink.cc",
        "native/caps.cc",
        "native/wake_probe.cc",
        "native/probe/echo.cc",
        "native/probe/prober.cc",
        "native/js/prober.cc",
        "native/js/sd_notify.cc",
        "native/wireguard/crypto.cc",
        "native/wireguard/noise.cc",
        "native/wireguard/cookie.cc",
        "native/wireguard/timers.cc",
        "native/wireguard/device.cc",
        "native/wireguard/device_handshake.cc",
        "native/wireguard/device_transport.cc",
        "native/js/wireguard_crypto_js.cc",
        "native/js/wireguard_device_js.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["-lpthread"]
    }
  ]
}
