{
  "targets": [
    {
      "target_name": "tfjs_libtorch",
      "sources": ["src/addon/addon.cc"],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include_dir\")", "<!@(node scripts/libtorch-config.cjs include)"],
      "defines": ["NAPI_EXPERIMENTAL", "NAPI_CPP_EXCEPTIONS", "<!@(node scripts/libtorch-config.cjs defines)"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter"],
      "libraries": ["<!@(node scripts/libtorch-config.cjs libdirs)", "<!@(node scripts/libtorch-config.cjs ldflags)", "<!@(node scripts/libtorch-config.cjs libs)"]
    }
  ]
}
