import Mustache

/// The registry browser's pages: Mustache templates (`{{name}}` is HTML-escaped; nothing here
/// uses the unescaped `{{{…}}}` form), one stylesheet, no JavaScript.
enum UITemplates {
    static let header = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Portcullis</title>
        <link rel="stylesheet" href="/ui/style.css">
        </head>
        <body>
        <header>
        <a class="brand" href="/ui/">Portcullis</a>
        {{#account}}
        <form class="logout" method="post" action="/ui/logout">
        <span class="account">{{account}}</span>
        <input type="hidden" name="csrf" value="{{csrf}}">
        <button type="submit">Log out</button>
        </form>
        {{/account}}
        </header>
        <main>

        """

    static let footer = """
        </main>
        </body>
        </html>

        """

    static let login = """
        {{> header}}
        <h1>Log in</h1>
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <form method="post" action="/ui/login">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label>User name <input name="username" autocomplete="username" required value="{{username}}"></label>
        <label>Password or token <input name="password" type="password" autocomplete="current-password" required></label>
        <button type="submit">Log in</button>
        </form>
        <p class="hint">The same credentials as <code>docker login</code>: an account, a robot, or a directory login.</p>
        {{> footer}}
        """

    static let repositories = """
        {{> header}}
        <h1>Repositories</h1>
        <form class="filter" method="get" action="/ui/">
        <label>Name contains <input name="q" value="{{query}}"></label>
        <button type="submit">Filter</button>
        </form>
        {{#empty}}<p>No repository you may pull{{#query}} matches “{{query}}”{{/query}}.</p>{{/empty}}
        <ul class="repositories">
        {{#repositories}}
        <li><a href="/ui/r/{{.}}">{{.}}</a></li>
        {{/repositories}}
        </ul>
        <nav class="pages">
        {{#previous}}<a rel="prev" href="/ui/?page={{previous}}{{#query}}&amp;q={{query}}{{/query}}">Previous</a>{{/previous}}
        <span>{{summary}}</span>
        {{#next}}<a rel="next" href="/ui/?page={{next}}{{#query}}&amp;q={{query}}{{/query}}">Next</a>{{/next}}
        </nav>
        {{> footer}}
        """

    static let repository = """
        {{> header}}
        <h1>{{name}}</h1>
        {{#empty}}<p>This repository has no tags.</p>{{/empty}}
        {{#groups}}
        <section class="digest">
        <h2><code>{{digest}}</code></h2>
        <p class="facts"><span class="kind">{{kind}}</span>{{#platforms}} · <span class="platforms">{{platforms}}</span>{{/platforms}} · <span class="size">{{size}}</span> · <span class="time">{{time}}</span></p>
        <ul class="tags">
        {{#tags}}<li><span class="tag">{{tag}}</span> <code class="pull">{{pull}}</code></li>{{/tags}}
        </ul>
        <p>By digest: <code class="pull">{{pullByDigest}}</code></p>
        <p><code class="pull">{{skopeo}}</code></p>
        {{#immutable}}<p class="immutable">{{immutable}}: this manifest cannot be deleted.</p>{{/immutable}}
        {{#deletable}}<p><a class="delete" href="/ui/delete?repository={{name}}&amp;digest={{digest}}">Delete this manifest…</a></p>{{/deletable}}
        </section>
        {{/groups}}
        <form class="prune" method="get" action="/ui/prune">
        <h2>Prune preview</h2>
        <input type="hidden" name="repository" value="{{name}}">
        <label>Keep the newest <input name="keep_last" size="4" inputmode="numeric"> images</label>
        <label>Delete only images older than <input name="older_than" size="6" placeholder="30d"></label>
        <label>Only tags matching <input name="tag_pattern" size="16" placeholder="*"></label>
        <button type="submit">Show the plan</button>
        </form>
        <p><a href="/ui/">All repositories</a></p>
        {{> footer}}
        """

    static let prunePreview = """
        {{> header}}
        <h1>Prune preview: {{name}}</h1>
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        {{^error}}
        <p>{{summary}} Nothing is deleted here; run it with the command line:</p>
        <p><code class="pull">{{command}}</code></p>
        {{#allowed}}<p class="allowed">{{allowed}}</p>{{/allowed}}
        {{#refusal}}<p class="error refusal" role="alert">{{refusal}}</p>{{/refusal}}
        <table class="plan">
        <thead><tr><th>Action</th><th>Digest</th><th>Time</th><th>Tags</th><th>Why kept</th></tr></thead>
        <tbody>
        {{#rows}}<tr class="{{action}}"><td>{{action}}</td><td><code>{{digest}}</code></td><td>{{time}}</td><td>{{tags}}</td><td>{{reason}}</td></tr>{{/rows}}
        </tbody>
        </table>
        {{/error}}
        <p><a href="/ui/r/{{name}}">Back to {{name}}</a></p>
        {{> footer}}
        """

    static let confirmDelete = """
        {{> header}}
        <h1>Delete a manifest of {{name}}?</h1>
        <p>The manifest <code>{{digest}}</code> and every tag pointing to it will be deleted:</p>
        <ul class="tags">{{#tags}}<li><span class="tag">{{.}}</span></li>{{/tags}}</ul>
        <form method="post" action="/ui/delete">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <input type="hidden" name="repository" value="{{name}}">
        <input type="hidden" name="digest" value="{{digest}}">
        <button type="submit" class="danger">Delete</button>
        <a href="/ui/r/{{name}}">Cancel</a>
        </form>
        {{> footer}}
        """

    static let message = """
        {{> header}}
        <h1>{{title}}</h1>
        <p>{{message}}</p>
        <p><a href="/ui/">Repositories</a></p>
        {{> footer}}
        """

    static let stylesheet = """
        body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
        header { display: flex; align-items: center; gap: 1rem; padding: .6rem 1.5rem; background: #1d2330; color: #fff; }
        header a.brand { color: #fff; font-weight: 600; text-decoration: none; }
        header form.logout { margin-left: auto; display: flex; gap: .6rem; align-items: center; }
        main { max-width: 60rem; margin: 1.5rem auto; padding: 0 1.5rem; }
        label { display: block; margin: .6rem 0; }
        input { font: inherit; padding: .3rem .4rem; }
        button { font: inherit; padding: .3rem .8rem; cursor: pointer; }
        .error { color: #9b1c1c; background: #fde8e8; padding: .5rem .8rem; border-radius: 4px; }
        ul.repositories { list-style: none; padding: 0; }
        ul.repositories li { padding: .35rem 0; border-bottom: 1px solid #dde1e7; }
        nav.pages { display: flex; gap: 1rem; margin-top: 1rem; }
        code { background: #eceff3; padding: 0 .25rem; border-radius: 3px; }
        section.digest { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: .4rem 1rem; margin: 1rem 0; }
        section.digest h2 { font-size: .95rem; }
        p.facts { color: #4a5263; font-size: .9rem; }
        ul.tags { list-style: none; padding: 0; }
        ul.tags li { padding: .2rem 0; }
        span.tag { font-weight: 600; margin-right: .6rem; }
        code.pull { user-select: all; word-break: break-all; }
        a.delete, button.danger { color: #9b1c1c; }
        form.prune { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: .4rem 1rem; margin: 1rem 0; }
        form.prune h2 { font-size: 1rem; }
        table.plan { border-collapse: collapse; width: 100%; background: #fff; }
        table.plan th, table.plan td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #dde1e7; font-size: .9rem; }
        tr.delete td:first-child { color: #9b1c1c; font-weight: 600; }
        """

    /// The templates, parsed once.
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in [
            ("header", header), ("footer", footer), ("login", login), ("repositories", repositories), ("repository", repository), ("confirmDelete", confirmDelete), ("prunePreview", prunePreview),
            ("message", message),
        ] {
            // The templates are constants checked by the UI tests: a parse error is a programming error.
            try! library.register(text, named: name)
        }
        return library
    }()
}
