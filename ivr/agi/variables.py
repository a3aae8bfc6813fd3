"""Every channel-variable name the call-center reads or writes, in one place (STYLE.md convention 4).

The dialplan contract lives in config/asterisk/extensions.conf and its README; keep them in step.
"""

from __future__ import annotations

from typing import Final

# Inbound screening (set by the AGI, read by the `inbound` context).
SCREEN_RESULT: Final = "SCREEN_RESULT"
SCREEN_REASONS: Final = "SCREEN_REASONS"

# Values of SCREEN_RESULT the dialplan knows about (anything but "allow" is rejected with Hangup(21)).
SCREEN_RESULT_ALLOW: Final = "allow"
SCREEN_RESULT_BLOCK: Final = "block"
SCREEN_RESULT_CHALLENGE_FAILED: Final = "challenge_failed"
SCREEN_RESULT_UNKNOWN: Final = "unknown"  # the dialplan's default before the AGI runs

# Outbound: set by Originate (`Variable: CC_ATTEMPT_ID=<id>`) and by the `outbound` context.
CC_ATTEMPT_ID: Final = "CC_ATTEMPT_ID"
CC_TRUNK: Final = "CC_TRUNK"
CC_QUEUE: Final = "CC_QUEUE"
CC_CAMPAIGN_ID: Final = "CC_CAMPAIGN_ID"
CC_ABANDONED: Final = "CC_ABANDONED"
CC_STEREO: Final = "CC_STEREO"
DIALNUM: Final = "DIALNUM"
DIALTIMEOUT: Final = "DIALTIMEOUT"
MAXSECS: Final = "MAXSECS"
RECFILE: Final = "RECFILE"

# Set by Asterisk itself.
AGISTATUS: Final = "AGISTATUS"
DIALSTATUS: Final = "DIALSTATUS"
HANGUPCAUSE: Final = "HANGUPCAUSE"
MIXMONITOR_FILENAME: Final = "MIXMONITOR_FILENAME"

# Dialplan expressions for GET FULL VARIABLE (the hostile fixtures query exactly these).
EXPR_CALLERID_ALL: Final = "${CALLERID(all)}"
EXPR_CALLERID_NAME: Final = "${CALLERID(name)}"
EXPR_CALLERID_NUM: Final = "${CALLERID(num)}"
