"""A headless LiveKit participant, for the media tests and the guided demo.

    livekit_participant.py URL TOKEN

Connects with the room token, publishes a silent audio track (so its media
is really connected), prints "connected <participant sid>" and stays until
stdin closes or SIGTERM (then leaves cleanly; SIGKILL is an abrupt drop).
Prints "disconnected <reason>" if the server puts it out.
"""
import asyncio
import signal
import sys

from livekit import rtc


async def main(url: str, token: str) -> int:
    room = rtc.Room()
    done = asyncio.Event()

    @room.on("disconnected")
    def on_disconnected(reason):
        print(f"disconnected {reason}", flush=True)
        done.set()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    await room.connect(url, token)
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("silence", source)
    await room.local_participant.publish_track(track)
    print(f"connected {room.local_participant.sid}", flush=True)

    async def feed_silence():
        frame = rtc.AudioFrame.create(48000, 1, 480)
        while not done.is_set():
            await source.capture_frame(frame)

    feeder = asyncio.create_task(feed_silence())
    await done.wait()
    feeder.cancel()
    await room.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
