"""The intake bot. Importing any part of it detaches mail-reading libraries from the log handlers."""

from intake.logs import quiet_libraries

quiet_libraries()
