{
  "targets": [
    {
      "target_name": "flannelts",
      "sources": [
        "native/addon.cc",
        "native/base/checksum.cc",
        "native/base/drop_reasons.cc",
        "native/base/ip_packet.cc",
        "native/base/mac.cc",
        "native/engine/capture_hook.cc",
        "native/engine/capture_ring.cc",
        "native/engine/engine.cc",
        "native/engine/routes.cc",
        "native/engine/rx_path.cc",
        "native/engine/stats.cc",
        "native/engine/thread_loop.cc",
        "native/engine/tx_path.cc",
        "native/engine_js.cc",
        "native/io/tun_device.cc",
        "native/io/udp_batch.cc",
        "native/io/udp_conn.cc",
        "native/encap/flannel_udp.cc",
        "native/encap/vxlan.cc",
        "native/encap/vxlan_codec.cc",
        "native/vxlan_js.cc",
        "native/offload/gro.cc",
        "native/offload/gso.cc",
        "native/offload/vnet_hdr.cc",
        "native/offload_js.cc",
        "native/netlink.cc",
        "native/caps.cc",
        "native/wake_probe.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["-lpthread"]
    },
    {
      "target_name": "flannelts_testing",
      "sources": ["native/testing/fake_tun.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpthread"]
    }
  ]
}
