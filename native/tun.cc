// placeholder, replaced by the tun implementation
#include <napi.h>
