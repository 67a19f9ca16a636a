//! fieldcase office server (filled by the server issue).
