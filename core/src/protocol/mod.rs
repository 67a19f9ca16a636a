//! Wire types shared by devices and the office server (filled by the server issue).
