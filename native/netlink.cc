// placeholder, replaced by the netlink implementation
#include <napi.h>
#include "netlink.h"
namespace flannelts { void InitNetlink(Napi::Env, Napi::Object) {} }
