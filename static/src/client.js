// Entry point of the browser client (filled in by the browser-client issue).
import { encode, decode } from "@msgpack/msgpack";
import SockJS from "sockjs-client";

export { encode, decode, SockJS };
