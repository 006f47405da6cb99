// placeholder, replaced by the encap implementation
#include <napi.h>
