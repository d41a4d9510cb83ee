//! Engine.IO v4 and Socket.IO v5 wire formats.
