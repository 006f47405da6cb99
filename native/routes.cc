// placeholder, replaced by the routes implementation
#include <napi.h>
