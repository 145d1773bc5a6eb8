/**
 * The demo portals' pages: server-rendered, Vietnamese, every value escaped (html.ts), no script.
 * `data-testid` hooks name what a newcomer (and the integration test) looks at.
 */
import { html, type Html } from './html.js';

export interface PortalLook {
  name: string;
  /** `national` or `provincial`: the colour of the band. */
  key: string;
  peer: { name: string; url: string };
}

export interface SignedIn {
  name: string | null;
  sub: string;
  acr: string | null;
  amr: string[];
  sid: string | null;
  signedInAt: number;
}

export const STYLESHEET = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;background:#f5f5f2}
header{padding:1rem 1.5rem;color:#fff}
.national header{background:#a4161a}
.provincial header{background:#0b5394}
header .title{font-size:1.25rem;font-weight:600;margin:0}
header .tag{margin:0;opacity:.85;font-size:.875rem}
main{max-width:44rem;margin:2rem auto;padding:0 1.5rem}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:1.5rem;margin-bottom:1.5rem}
h1{font-size:1.5rem;margin-top:0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.5rem 1rem}
dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere}
code{font-size:.875rem;background:#f0f0ec;padding:.1rem .3rem;border-radius:4px}
.button,button{display:inline-block;font:inherit;font-weight:600;padding:.6rem 1.2rem;border-radius:6px;border:0;cursor:pointer;text-decoration:none;color:#fff}
.national .button,.national button{background:#a4161a}
.provincial .button,.provincial button{background:#0b5394}
.notice{border-left:4px solid #e0a100;background:#fff8e1;padding:.75rem 1rem;border-radius:4px}
.error{border-left:4px solid #a4161a;background:#fdecea;padding:.75rem 1rem;border-radius:4px}
.muted{color:#555;font-size:.875rem}
footer{max-width:44rem;margin:0 auto 2rem;padding:0 1.5rem;color:#555;font-size:.875rem}
`;

function layout(look: PortalLook, title: string, body: Html): string {
  return html`<!doctype html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} — ${look.name}</title>
<link rel="stylesheet" href="/demo.css">
</head>
<body class="${look.key}">
<header>
  <p class="title">${look.name}</p>
  <p class="tag">Cổng thử nghiệm của dinhdanh — chỉ chạy khi phát triển (DINHDANH_DEMO=off để tắt)</p>
</header>
<main>
${body}
</main>
<footer>Một bên tin cậy (relying party) thật: openid-client 6, luồng mã ủy quyền với PKCE, đăng xuất kênh sau (back-channel logout).</footer>
</body>
</html>
`.value;
}

const time = (ms: number) => new Date(ms).toLocaleTimeString('vi-VN', { timeZone: 'Asia/Ho_Chi_Minh', hour12: false });

/** A security event this portal received (SSF 1.0), as its page lists it. */
export interface ReceivedEvent {
  type: string;
  at: number;
  sub: string | null;
  txn: string | null;
  /** Local sessions it ended. */
  ended: number;
}

function eventsCard(events: readonly ReceivedEvent[] | undefined) {
  if (!events || events.length === 0) return null;
  return html`
<section class="card" data-testid="security-events">
  <h2>Sự kiện bảo mật đã nhận (Shared Signals)</h2>
  <table>
    <thead><tr><th scope="col">Lúc</th><th scope="col">Sự kiện</th><th scope="col">sub</th><th scope="col">txn</th><th scope="col">Phiên đã kết thúc</th></tr></thead>
    <tbody>${events.map((e) => html`<tr data-testid="security-event"><td>${time(e.at)}</td><td><code>${e.type.split(/[/:]/).pop() ?? e.type}</code></td><td><code>${e.sub ?? '—'}</code></td><td><code>${e.txn ?? '—'}</code></td><td>${String(e.ended)}</td></tr>`)}</tbody>
  </table>
</section>`;
}

export function homePage(look: PortalLook, state: { user?: SignedIn; csrf?: string; endedByBackchannelAt?: number; endedByEvent?: { at: number; type: string }; events?: readonly ReceivedEvent[] }): string {
  const { user } = state;
  const events = eventsCard(state.events);
  if (user && state.csrf) {
    return layout(look, 'Trang chủ', html`
<section class="card">
  <h1>Xin chào, <span data-testid="name">${user.name ?? '(không có tên)'}</span></h1>
  <p>Bạn đã đăng nhập vào cổng này bằng dinhdanh lúc ${time(user.signedInAt)}.</p>
  <dl>
    <dt>sub</dt><dd><code data-testid="sub">${user.sub}</code><br><span class="muted">định danh theo cặp (pairwise): mỗi cổng thấy một giá trị khác cho cùng một người</span></dd>
    <dt>acr</dt><dd><code data-testid="acr">${user.acr ?? '—'}</code></dd>
    <dt>amr</dt><dd><code data-testid="amr">${user.amr.join(' ') || '—'}</code></dd>
    <dt>sid</dt><dd><code data-testid="sid">${user.sid ?? '—'}</code></dd>
  </dl>
</section>
<section class="card">
  <p>Đăng nhập một lần: sang <a href="${look.peer.url}" data-testid="peer">${look.peer.name}</a> và bấm “Đăng nhập bằng dinhdanh” — bạn sẽ không phải nhập lại mật khẩu, chỉ đồng ý chia sẻ thông tin lần đầu.</p>
  <form method="post" action="/logout">
    <input type="hidden" name="_csrf" value="${state.csrf}">
    <button type="submit">Đăng xuất</button>
  </form>
  <p class="muted">Chọn “tất cả các cổng” trên trang của dinhdanh: cổng kia sẽ nhận lệnh đăng xuất kênh sau.</p>
</section>
${events}`);
  }
  const notice = state.endedByBackchannelAt === undefined
    ? null
    : html`<p class="notice" role="status" data-testid="backchannel-logout">Phiên đăng nhập của bạn tại cổng này đã được kết thúc lúc ${time(state.endedByBackchannelAt)}: bạn đã đăng xuất ở nơi khác, và dinhdanh đã báo cho cổng này bằng đăng xuất kênh sau (back-channel logout).</p>`;
  const byEvent = state.endedByEvent === undefined
    ? null
    : html`<p class="notice" role="status" data-testid="security-event-logout">Phiên đăng nhập của bạn tại cổng này đã được kết thúc lúc ${time(state.endedByEvent.at)}: dinhdanh đã gửi sự kiện bảo mật <code>${state.endedByEvent.type.split('/').pop() ?? ''}</code> (tài khoản bị khóa hoặc phiên bị thu hồi).</p>`;
  return layout(look, 'Trang chủ', html`
<section class="card">
  <h1>Chào mừng</h1>
  ${notice}
  ${byEvent}
  <p data-testid="signed-out">Bạn chưa đăng nhập.</p>
  <p><a class="button" href="/login">Đăng nhập bằng dinhdanh</a></p>
  <p class="muted">Tài khoản công dân thử nghiệm và mật khẩu được in ra cửa sổ dòng lệnh khi dinhdanh khởi động (mật khẩu mới ở mỗi lần khởi động).</p>
</section>
<section class="card">
  <p>Cổng thử nghiệm còn lại: <a href="${look.peer.url}">${look.peer.name}</a>.</p>
</section>
${events}`);
}

export function signedOutPage(look: PortalLook): string {
  return layout(look, 'Đã đăng xuất', html`
<section class="card">
  <h1>Bạn đã đăng xuất</h1>
  <p>Bạn đã đăng xuất khỏi dinhdanh. Nếu bạn chọn “tất cả các cổng”, các cổng khác cũng đã được báo.</p>
  <p><a href="/">Về trang chủ</a> · <a href="${look.peer.url}">${look.peer.name}</a></p>
</section>`);
}

export function errorPage(look: PortalLook, title: string, message: string, detail?: string): string {
  return layout(look, title, html`
<section class="card">
  <h1>${title}</h1>
  <p class="error" role="alert">${message}</p>
  ${detail ? html`<p class="muted">Mã lỗi: <code>${detail}</code></p>` : null}
  <p><a class="button" href="/login">Thử đăng nhập lại</a> <a href="/">Về trang chủ</a></p>
</section>`);
}
