"""Real-time streaming: the websocket wire format, Opus/Ogg, the engine and the server."""
