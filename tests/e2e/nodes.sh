# nodes.sh - several daemons in one shell (twonode.sh, the two-node soak):
# lib.sh and daemon.sh keep one node's state in NODE_VARS; "node X" saves
# the current node's into X_... variables and swaps X's in. Not in
# daemon.sh: the browser suites source that and run Node.js as "node".
NODE_VARS="T PF_PORT PF_DIR PF_CONF PF_QUEUE PF_MASTER_PID SWAKS_LAST MILTER_PORT MILTER_PID MILTER_CONF MILTER_STATE"
CUR=
node() {
	if [ -n "$CUR" ]; then
		for _v in $NODE_VARS; do eval "${CUR}_$_v=\${$_v:-}"; done
	fi
	for _v in $NODE_VARS; do eval "$_v=\${${1}_$_v:-}"; done
	CUR=$1
}
