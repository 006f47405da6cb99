// placeholder, replaced by the udp implementation
#include <napi.h>
