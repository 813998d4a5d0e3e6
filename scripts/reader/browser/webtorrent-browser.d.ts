// webtorrent's own browser build (an ES module with WebRTC and fetch-based web seeds), typed as the
// parts of webtorrent the page uses (sidecar/types/webtorrent.d.ts) plus what browsers add.
declare module 'webtorrent/dist/webtorrent.min.js' {
  import WebTorrent from 'webtorrent';
  export default WebTorrent;
}
