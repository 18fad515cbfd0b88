//! `pressroom preview --serve`: the live preview server. It keeps the
//! site in memory ([`state::Workspace`]), watches `config.toml`,
//! `content/`, `templates/` and the subscriber list with a debounced
//! watcher, renders the next issue again on every change (with the
//! preview command's own code, handed in as a [`Renderer`]), and tells
//! every open page over a WebSocket to fetch itself again. The page
//! ([`page`]) shows each email in a desktop, a phone and a dark-mode
//! frame, its text part, headers, size and lint findings, or the
//! `file:line: message` of whatever stops it from rendering.
//!
//! For 127.0.0.1: the same axum and tokio stack as `pressroom serve`,
//! without its public-facing limits (the only client is the writer).

pub mod page;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use notify_debouncer_full::notify::RecursiveMode;
use notify_debouncer_full::DebounceEventResult;
use tokio::sync::watch;
use tracing::{error, info, warn};

use self::state::Workspace;
use crate::config::email::Mode;
use crate::content::Site;
use crate::email::{Finding, Templates};

/// How long the watcher waits for a burst of file events (an editor's
/// save is several) to end before it reports them.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// The subscriber list rows offered as sample readers on the page.
const READERS_SHOWN: usize = 200;

/// What the page's controls choose; empty fields mean the command line's
/// choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controls {
    pub mode: Option<Mode>,
    /// Slugs of the articles to show; empty: what a send would mail next.
    pub articles: Vec<String>,
    /// The reader; None: the sample reader.
    pub to: Option<String>,
}

impl Controls {
    /// From a query string (`mode=digest&articles=a,b&to=x@example.com`;
    /// `articles` may repeat). Values it does not know are left out.
    pub fn from_query(query: &str) -> Controls {
        let mut controls = Controls::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim();
            match &*key {
                "mode" => {
                    controls.mode = match value {
                        "digest" => Some(Mode::Digest),
                        "per-article" => Some(Mode::PerArticle),
                        _ => None,
                    }
                }
                "articles" => {
                    for slug in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        // The same slug from the text field and a checkbox.
                        if !controls.articles.iter().any(|a| a == slug) {
                            controls.articles.push(slug.to_owned());
                        }
                    }
                }
                "to" if !value.is_empty() => controls.to = Some(value.to_owned()),
                _ => {}
            }
        }
        controls
    }

    /// These controls with the blanks filled from `defaults`.
    pub fn or(&self, defaults: &Controls) -> Controls {
        Controls {
            mode: self.mode.or(defaults.mode),
            articles: if self.articles.is_empty() {
                defaults.articles.clone()
            } else {
                self.articles.clone()
            },
            to: self.to.clone().or_else(|| defaults.to.clone()),
        }
    }
}

/// One issue as `pressroom preview` renders it, in memory.
#[derive(Debug, Clone)]
pub struct Preview {
    /// What the emails are: the next issue, or the newest articles.
    pub note: String,
    /// The reader they are rendered for.
    pub recipient: String,
    pub emails: Vec<PreviewEmail>,
}

/// One email of a [`Preview`].
#[derive(Debug, Clone)]
pub struct PreviewEmail {
    /// `NN-slug`, the name of its files.
    pub stem: String,
    pub subject: String,
    /// Titles of its articles.
    pub articles: Vec<String>,
    pub html: String,
    pub text: String,
    /// The message's bytes, as a send would deliver them.
    pub eml: Vec<u8>,
    pub findings: Vec<Finding>,
}

/// The preview command's rendering, handed to the server so that the page
/// shows exactly what `pressroom preview` writes.
pub trait Renderer: Send + Sync + 'static {
    /// Renders the emails the controls choose. The error is the text the
    /// command prints (one `file:line: message` per line).
    fn render(
        &self,
        site: &Site,
        templates: &Templates,
        controls: &Controls,
    ) -> Result<Preview, String>;

    /// Called with each new rendering of the command line's choice
    /// (writes the files when `--out` is given).
    fn rendered(&self, site: &Site, preview: &Preview) -> Result<(), String>;
}

/// Everything one page shows for one generation of the files.
struct Snapshot {
    generation: u64,
    site: Result<Arc<Site>, String>,
    templates: Result<Arc<Templates>, String>,
    /// The command line's choice, rendered.
    preview: Result<Arc<Preview>, String>,
    readers: Vec<String>,
}

impl Snapshot {
    /// The lines that stop the preview from rendering, if any.
    fn problems(&self) -> Vec<String> {
        problems_with(self, &self.preview)
    }
}

/// A rendering kept: its generation, its controls, and the outcome.
type Rendered = (u64, Controls, Result<Arc<Preview>, String>);

/// Shared by every request.
struct App {
    snapshot: watch::Receiver<Arc<Snapshot>>,
    renderer: Arc<dyn Renderer>,
    defaults: Controls,
    page: page::Page,
    /// The last rendering for other controls than the defaults.
    other: Mutex<Option<Rendered>>,
}

/// Renders `workspace`'s site with `controls`, if it loaded.
fn render(
    renderer: &dyn Renderer,
    site: &Result<Arc<Site>, String>,
    templates: &Result<Arc<Templates>, String>,
    controls: &Controls,
) -> Result<Arc<Preview>, String> {
    match (site, templates) {
        (Ok(site), Ok(templates)) => renderer.render(site, templates, controls).map(Arc::new),
        // Shown from the snapshot's own fields.
        _ => Err(String::new()),
    }
}

/// The first rows of the subscriber list (none when it cannot be read).
fn readers(workspace: &Workspace) -> Vec<String> {
    let Some(config) = workspace.config() else {
        return Vec::new();
    };
    match crate::delivery::subscribers::Subscribers::open(
        workspace.root(),
        &config.send.subscribers,
    ) {
        Ok(rows) => rows
            .flatten()
            .take(READERS_SHOWN)
            .map(|s| s.email.as_str().to_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Renders the workspace for the defaults, reports the outcome on the
/// terminal, and hands it to the renderer's [`Renderer::rendered`].
fn snapshot(
    workspace: &Workspace,
    renderer: &dyn Renderer,
    defaults: &Controls,
    generation: u64,
    started: Instant,
) -> Snapshot {
    let site = workspace.site();
    let templates = workspace.templates();
    let preview = render(renderer, &site, &templates, defaults);
    let snapshot = Snapshot {
        generation,
        site,
        templates,
        preview,
        readers: readers(workspace),
    };
    let problems = snapshot.problems();
    if problems.is_empty() {
        if let (Ok(site), Ok(preview)) = (&snapshot.site, &snapshot.preview) {
            if let Err(e) = renderer.rendered(site, preview) {
                error!("{e}");
            }
            info!(
                "rendered {} email(s) in {} ms",
                preview.emails.len(),
                started.elapsed().as_millis()
            );
        }
    } else {
        for line in &problems {
            error!("{line}");
        }
    }
    snapshot
}

/// Starts watching the site's files, then reads them (so that no save is
/// missed in between) with `load`, renders them, and keeps the returned
/// receiver up to date from a thread of its own.
fn watch_files(
    root: &Path,
    load: impl FnOnce() -> Workspace,
    renderer: Arc<dyn Renderer>,
    defaults: Controls,
) -> Result<(std::thread::JoinHandle<()>, watch::Receiver<Arc<Snapshot>>), String> {
    let started = Instant::now();
    let (tx, rx) = mpsc::channel::<DebounceEventResult>();
    let mut debouncer = notify_debouncer_full::new_debouncer(DEBOUNCE, None, tx)
        .map_err(|e| format!("cannot watch the site's files: {e}"))?;
    let root = root.to_path_buf();
    debouncer
        .watch(&root, RecursiveMode::NonRecursive)
        .map_err(|e| format!("cannot watch {}: {e}", root.display()))?;
    let mut watched: Vec<PathBuf> = Vec::new();
    for folder in Workspace::folders_of(&root) {
        match debouncer.watch(&folder, RecursiveMode::Recursive) {
            Ok(()) => watched.push(folder),
            Err(e) => warn!("cannot watch {}: {e}", folder.display()),
        }
    }
    let mut workspace = load();
    let mut ensure =
        move |workspace: &Workspace, debouncer: &mut notify_debouncer_full::Debouncer<_, _>| {
            let mut wanted: Vec<(PathBuf, RecursiveMode)> = workspace
                .folders()
                .into_iter()
                .map(|f| (f, RecursiveMode::Recursive))
                .collect();
            // A subscriber list in a folder of its own.
            if let Some(parent) = workspace.subscribers().as_deref().and_then(|s| s.parent()) {
                if parent != root && parent.is_dir() {
                    wanted.push((parent.to_path_buf(), RecursiveMode::NonRecursive));
                }
            }
            // A folder removed (or renamed away) is watched again when it is
            // back.
            watched.retain(|w| w.is_dir());
            for (folder, mode) in wanted {
                if !watched.contains(&folder) {
                    match debouncer.watch(&folder, mode) {
                        Ok(()) => watched.push(folder),
                        Err(e) => warn!("cannot watch {}: {e}", folder.display()),
                    }
                }
            }
        };
    ensure(&workspace, &mut debouncer);
    let first = snapshot(&workspace, &*renderer, &defaults, 0, started);
    let (sender, receiver) = watch::channel(Arc::new(first));
    let thread = std::thread::Builder::new()
        .name("preview-watch".into())
        .spawn(move || {
            let mut generation = 0;
            for batch in rx {
                let events = match batch {
                    Ok(events) => events,
                    Err(errors) => {
                        for e in errors {
                            warn!("watching the site's files: {e}");
                        }
                        continue;
                    }
                };
                let started = Instant::now();
                let mut paths: Vec<PathBuf> = events
                    .iter()
                    .flat_map(|e| e.event.paths.iter().cloned())
                    .collect();
                paths.sort();
                paths.dedup();
                let outcome = workspace.apply(&paths);
                ensure(&workspace, &mut debouncer);
                if !outcome.changed {
                    continue;
                }
                tracing::debug!(
                    "changed: {} article file(s) read again{}{}",
                    outcome.reread.len(),
                    if outcome.templates { ", templates" } else { "" },
                    if outcome.config { ", config.toml" } else { "" },
                );
                generation += 1;
                let next = snapshot(&workspace, &*renderer, &defaults, generation, started);
                if sender.send(Arc::new(next)).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| format!("cannot start the file watcher: {e}"))?;
    Ok((thread, receiver))
}

/// Serves the live preview of the site in `root` on `listener` until
/// `shutdown` completes. `load` reads the site (once the watcher is
/// watching); `defaults` is the command line's choice of mode, articles
/// and reader; `ready` is called with the page's URL once it is served.
pub async fn run(
    listener: tokio::net::TcpListener,
    root: &Path,
    load: impl FnOnce() -> Workspace,
    renderer: Arc<dyn Renderer>,
    defaults: Controls,
    ready: impl FnOnce(&str),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let (_watcher, receiver) = tokio::task::block_in_place(|| {
        watch_files(root, load, renderer.clone(), defaults.clone())
    })?;
    let app = Arc::new(App {
        snapshot: receiver,
        renderer,
        defaults,
        page: page::Page::new()?,
        other: Mutex::new(None),
    });
    let router = Router::new()
        .route("/", get(index))
        .route("/live", get(live))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(app);
    let addr = listener
        .local_addr()
        .map_err(|e| format!("the preview server's address: {e}"))?;
    ready(&url(addr));
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("the preview server stopped: {e}"))
}

/// The page, for the controls in the query.
async fn index(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    let chosen = Controls::from_query(query.as_deref().unwrap_or(""));
    let controls = chosen.or(&app.defaults);
    let snapshot = app.snapshot.borrow().clone();
    let preview = if controls == app.defaults {
        snapshot.preview.clone()
    } else {
        let cached = app
            .other
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|(g, c, _)| *g == snapshot.generation && *c == controls)
            .map(|(_, _, p)| p);
        match cached {
            Some(p) => p,
            None => {
                let (app2, snap, ctl) = (app.clone(), snapshot.clone(), controls.clone());
                let rendered = tokio::task::spawn_blocking(move || {
                    render(&*app2.renderer, &snap.site, &snap.templates, &ctl)
                })
                .await
                .unwrap_or_else(|e| Err(format!("rendering stopped: {e}")));
                if let Ok(mut cache) = app.other.lock() {
                    *cache = Some((snapshot.generation, controls.clone(), rendered.clone()));
                }
                rendered
            }
        }
    };
    let body = app.page.render(&page::Input {
        generation: snapshot.generation,
        site: snapshot.site.as_ref().ok().map(|s| &**s),
        problems: problems_with(&snapshot, &preview),
        preview: preview.as_ref().ok().map(|p| &**p),
        controls: &chosen,
        defaults: &app.defaults,
        readers: &snapshot.readers,
    });
    match body {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// The snapshot's problems, with `preview`'s own error when the site and
/// templates loaded.
fn problems_with(snapshot: &Snapshot, preview: &Result<Arc<Preview>, String>) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for e in [
        snapshot.site.as_ref().err(),
        snapshot.templates.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    {
        lines.extend(e.lines().map(str::to_owned));
    }
    if lines.is_empty() {
        if let Err(e) = preview {
            lines.extend(e.lines().map(str::to_owned));
        }
    }
    lines
}

/// The page's WebSocket: sends the generation now and after every change.
async fn live(State(app): State<Arc<App>>, upgrade: WebSocketUpgrade) -> Response {
    let receiver = app.snapshot.clone();
    upgrade.on_upgrade(move |socket| notify(socket, receiver))
}

async fn notify(mut socket: WebSocket, mut receiver: watch::Receiver<Arc<Snapshot>>) {
    loop {
        let generation = receiver.borrow_and_update().generation;
        if socket
            .send(Message::Text(generation.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
        tokio::select! {
            changed = receiver.changed() => if changed.is_err() { return },
            incoming = socket.recv() => match incoming {
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

/// The address the live preview listens on, for messages.
pub fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}
