#!/bin/sh
# mk-docker-opts.sh: Docker daemon options from flanneld's subnet.env, as flannel's image ships it
# (/opt/bin/mk-docker-opts.sh): --bip (the node's subnet), --mtu, and --ip-masq=false when flanneld
# masquerades itself (true when it does not), written as an env file for docker.service.
usage() {
	cat >&2 <<USAGE
usage: $0 [-f FLANNEL-ENV-FILE] [-d DOCKER-ENV-FILE] [-i] [-c] [-m] [-k COMBINED-KEY]

Writes Docker daemon options for flannel's subnet (from flanneld's subnet.env) to an env file.
	-f FILE	flanneld's subnet.env (default /run/flannel/subnet.env)
	-d FILE	the env file to write (default /run/docker_opts.env)
	-i	one variable per option: DOCKER_OPT_BIP, DOCKER_OPT_MTU, DOCKER_OPT_IPMASQ
	-c	all options in one variable (DOCKER_OPTS, or the -k name)
	-k NAME	name of the combined variable (default DOCKER_OPTS)
	-m	leave out --ip-masq (Docker releases without that option)
Without -i and -c, both.
USAGE
	exit 1
}

subnet_env=/run/flannel/subnet.env
out=/run/docker_opts.env
key=DOCKER_OPTS
each=false
combined=false
masq=true
while getopts "f:d:icmk:h" opt; do
	case $opt in
	f) subnet_env=$OPTARG ;;
	d) out=$OPTARG ;;
	i) each=true ;;
	c) combined=true ;;
	m) masq=false ;;
	k) key=$OPTARG ;;
	*) usage ;;
	esac
done
# Neither -i nor -c: both.
if [ "$each" = false ] && [ "$combined" = false ]; then each=true; combined=true; fi

# subnet.env is KEY=VALUE lines: FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ, ...
if [ -f "$subnet_env" ]; then . "$subnet_env"; fi

[ -n "${FLANNEL_SUBNET:-}" ] && DOCKER_OPT_BIP="--bip=$FLANNEL_SUBNET"
[ -n "${FLANNEL_MTU:-}" ] && DOCKER_OPT_MTU="--mtu=$FLANNEL_MTU"
if [ -n "${FLANNEL_IPMASQ:-}" ] && [ "$masq" = true ]; then
	# Whoever masquerades, the other must not: flanneld's -ip-masq turns Docker's off.
	case $FLANNEL_IPMASQ in
	true) DOCKER_OPT_IPMASQ="--ip-masq=false" ;;
	false) DOCKER_OPT_IPMASQ="--ip-masq=true" ;;
	*) echo "Invalid value of FLANNEL_IPMASQ: $FLANNEL_IPMASQ" >&2; exit 1 ;;
	esac
fi

# The combined value starts from what the key already holds in the environment.
eval "opts=\${$key:-}"
[ -n "$opts" ] && opts="$opts "

: >"$out"
# Every DOCKER_OPT_* variable set by now (also ones from the environment), in name order.
for name in $(set | sed -n 's/^\(DOCKER_OPT_[A-Za-z0-9_]*\)=.*/\1/p' | sort); do
	eval "value=\$$name"
	[ "$each" = true ] && echo "$name=\"$value\"" >>"$out"
	opts="$opts $value"
done
[ "$combined" = true ] && echo "$key=\"$opts\"" >>"$out"

# Docker's bridge would clash with a route the host already has to this subnet through a gateway.
if [ -n "${FLANNEL_SUBNET:-}" ]; then
	addr=${FLANNEL_SUBNET%/*}
	len=${FLANNEL_SUBNET#*/}
	net="${addr%.*}.$((${addr##*.} - 1))/$len"
	clash=$(ip route show | grep -F "$net" | grep via || true)
	if [ -n "$clash" ]; then
		echo "Your routing table already contains the subnet: $clash" >&2
		exit 1
	fi
fi
exit 0
