// 'nostr-bt/formats': the archive's formats (docs/protocol.md) as codecs, with no network: the
// canonical event and its checks (§4), the bridge's pointer items (§7) and the bundle layout
// (§6). For readers that fetch bytes some other way (an HTTP gateway, a browser) and verify them.
export {
  canonicalJson,
  computeEventId,
  validateEvent,
  hasValidSignature,
  initSignatureCheck,
  eventFromLine,
  InvalidEvent,
  type NostrEvent,
} from '../../sidecar/formats/nostr-event.js';
export { canonicalHead } from '../../sidecar/formats/canonical-line.js';
export { isEphemeral, isReplaceable, isAddressable, replaceKeyOf, expirationOf } from '../../sidecar/formats/event-kinds.js';
export { verifyEvent, verifyJsonl, Rejections, type RejectReason } from './verify-events.js';
export {
  FORMAT_VERSION,
  MAX_V_BYTES,
  MAX_PAGES,
  BRIDGE_SALT,
  authorSalt,
  targetOf,
  signedBytes,
  vSize,
  authorPages,
  decodeAuthorPage,
  bridgeValue,
  decodeBridgeValue,
  BadItem,
  type AuthorPage,
  type BridgeInfo,
} from '../../sidecar/formats/pointer-item.js';
export { checkItem as verifyPointerItem, type VerifiedItem, type ItemProblem } from './pointer-verify.js';
export { verifyEd25519 } from '../../sidecar/formats/ed25519.js';
export { zbase32, zbase32Decode } from '../../sidecar/formats/zbase32.js';
export { encodeBundleInfo, type BundleInfo, type InfoFile } from '../../sidecar/formats/bundle-info.js';
export { torrentLayout, TorrentLayoutError, type TorrentLayout } from '../../sidecar/formats/torrent-layout.js';
export {
  DISCOVERY_INFOHASH,
  BEACON_EXTENSION,
  beaconStatement,
  verifyBeaconAnswer,
  readerHello,
} from '../../sidecar/formats/bridge-beacon.js';
export {
  ADVERT_KIND,
  ADVERT_D,
  advertProofMessage,
  advertTemplate,
  readAdvert,
  type AdvertFields,
} from '../../sidecar/formats/bridge-advert.js';
export {
  encodeCatalog,
  decodeCatalog,
  catalogTorrent,
  catalogMismatch,
  catalogHeader,
  BadCatalog,
  CATALOG_VERSION,
  type Catalog,
  type CatalogBundle,
  type CatalogHeader,
} from '../../sidecar/formats/catalog.js';
