/* The chat sidebar: registers the WeCom JS-SDK with our server's agentConfig signature, learns who the
   chat is with, shows the customer card and runs the quick actions through /wecom/sidebar/api.
   The SDK is WeCom's (`ww`, @wecom/jssdk) inside WeCom; inside the local WeCom simulator the
   embedding page provides the same functions as `window.parent.wecomSimSdk`. */
(function () {
  "use strict";
  var body = document.body;
  var prefix = body.dataset.prefix;
  var token = body.dataset.token;
  var current = null; // the customer shown

  function sdk() {
    try {
      if (window.parent !== window && window.parent.wecomSimSdk) return window.parent.wecomSimSdk;
    } catch (e) { /* another origin: not the simulator */ }
    return window.ww;
  }

  function $(id) { return document.getElementById(id); }

  function show(id, on) { $(id).hidden = !on; }

  function status(text) { $("status").textContent = text; show("status", !!text); }

  function fail(message) { $("error").textContent = message; show("error", true); status(""); }

  function toast(text) {
    var el = $("toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, 3000);
  }

  function api(method, path, data) {
    var init = { method: method, headers: { "X-Sidebar-Token": token, "Accept": "application/json" } };
    if (data !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(data);
    }
    return fetch(prefix + "/api" + path, init).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (json) {
        if (!res.ok) {
          var err = new Error(json.message || "操作失败（" + res.status + "）");
          err.code = json.code;
          throw err;
        }
        return json;
      });
    });
  }

  function text(el, value) { el.textContent = value == null ? "" : String(value); return el; }

  function li(parts) {
    var item = document.createElement("li");
    parts.forEach(function (p) {
      var span = document.createElement("span");
      span.className = p[0];
      text(span, p[1]);
      item.appendChild(span);
    });
    return item;
  }

  function fill(list, rows, empty, render) {
    list.replaceChildren();
    if (!rows.length) { list.appendChild(li([["muted", empty]])); return; }
    rows.forEach(function (r) { list.appendChild(render(r)); });
  }

  function renderCard(c) {
    current = c;
    text($("c-name"), c.name);
    text($("c-stage"), c.stage);
    text($("c-phone"), c.phone_masked || "—");
    text($("c-owner"), c.owner);
    text($("c-next"), c.next_followup_at || "—");
    var tags = $("c-tags");
    tags.replaceChildren();
    c.tags.forEach(function (t) { var s = document.createElement("span"); s.className = "tag"; text(s, t.name); tags.appendChild(s); });
    fill($("c-followups"), c.followups, "还没有跟进记录", function (f) {
      return li([["meta", f.at + " " + f.kind + (f.by ? " · " + f.by : "")], ["body", f.content + (f.outcome ? "（" + f.outcome + "）" : "")]]);
    });
    renderQualification(c);
    renderFields(c);
    fill($("c-apps"), c.applications, "还没有贷款申请", function (a) {
      return li([["meta", "#" + a.id + " " + a.product], ["body", a.amount + " / " + a.term_months + " 个月 · " + a.status]]);
    });
    text($("c-match-note"), c.matching.note);
    fill($("c-matching"), c.matching.rows, "暂无可匹配的产品", function (m) {
      var item = li([["meta", m.label + " · " + m.name], ["body", m.detail]]);
      item.className = "match-" + m.state;
      return item;
    });
    show("card", true);
    status("");
  }

  function facts(dl, rows) {
    dl.replaceChildren();
    rows.forEach(function (r) {
      var dt = document.createElement("dt"), dd = document.createElement("dd");
      text(dt, r[0]); text(dd, r[1]);
      dl.appendChild(dt); dl.appendChild(dd);
    });
    if (!rows.length) { var dd = document.createElement("dd"); dd.className = "muted"; text(dd, "未填写"); dl.appendChild(dd); }
  }

  function field(label, input, required) {
    var wrap = document.createElement("label"), name = document.createElement("span");
    text(name, label);
    if (required) { var star = document.createElement("span"); star.className = "req"; text(star, " *"); name.appendChild(star); }
    wrap.appendChild(name);
    wrap.appendChild(input);
    return wrap;
  }

  function select(name, choices, value) {
    var el = document.createElement("select");
    el.name = name;
    [["", "未填写"]].concat(choices).forEach(function (c) {
      var o = document.createElement("option"); o.value = c[0]; text(o, c[1]);
      if (String(value == null ? "" : value) === c[0]) o.selected = true;
      el.appendChild(o);
    });
    return el;
  }

  function input(name, value, placeholder) {
    var el = document.createElement("input");
    el.name = name; el.value = value == null ? "" : value; el.placeholder = placeholder || "";
    el.autocomplete = "off";
    return el;
  }

  var qualificationCodes = {};

  function renderQualification(c) {
    facts($("c-qualification"), c.qualification.filter(function (f) { return f.shown !== "—"; })
      .map(function (f) { return [f.label, f.shown]; }));
    var box = $("q-inputs");
    box.replaceChildren();
    c.qualification.forEach(function (f) {
      var codes = qualificationCodes[f.name];
      var el = codes ? select(f.name, Object.keys(codes).map(function (k) { return [k, codes[k]]; }), f.value)
        : f.sealed ? input(f.name, "", f.shown !== "—" ? f.shown : "") : input(f.name, f.value);
      box.appendChild(field(f.label + (f.sealed ? " *" : ""), el));
    });
  }

  function renderFields(c) {
    var has = c.custom_fields.length > 0;
    show("c-fields-head", has); show("c-fields", has); show("a-fields", has);
    facts($("c-fields"), c.custom_fields.filter(function (f) { return f.value; }).map(function (f) { return [f.label, f.value]; }));
    var box = $("cf-inputs");
    box.replaceChildren();
    c.custom_fields.forEach(function (f) {
      var el;
      if (f.field_type === "choice") el = select(f.key, f.options.map(function (o) { return [o, o]; }), f.value);
      else if (f.sensitive) el = input(f.key, "", f.value);
      else { el = input(f.key, f.value); if (f.field_type === "date") el.type = "date"; if (f.field_type === "number") el.inputMode = "decimal"; }
      box.appendChild(field(f.label, el, f.required));
    });
  }

  function options(select, rows, label) {
    select.replaceChildren();
    rows.forEach(function (r) { var o = document.createElement("option"); o.value = r.id; text(o, label(r)); select.appendChild(o); });
  }

  var products = [];

  function loadChoices() {
    return api("GET", "/choices").then(function (ch) {
      products = ch.products;
      qualificationCodes = ch.qualification || {};
      options(document.querySelector("#f-tag select"), ch.tags, function (t) { return t.name; });
      document.querySelectorAll("select.products").forEach(function (s) {
        options(s, ch.products, function (p) { return p.name + "（" + p.min_amount + "–" + p.max_amount + "）"; });
      });
      termsFor();
    });
  }

  function termsFor() {
    var form = $("f-apply");
    var p = products.find(function (x) { return String(x.id) === form.product_id.value; });
    options(form.term_months, (p ? p.terms : []).map(function (t) { return { id: t }; }), function (t) { return t.id + " 个月"; });
  }

  function formData(form) {
    var out = {};
    new FormData(form).forEach(function (v, k) { out[k] = v; });
    return out;
  }

  function bind(id, handler) {
    $(id).addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!current) return;
      $("error").hidden = true;
      var button = ev.submitter;
      if (button) button.disabled = true;
      Promise.resolve().then(function () { return handler(ev.target, formData(ev.target), button); })
        .catch(function (e) { fail(e.message || String(e)); })
        .finally(function () { if (button) button.disabled = false; });
    });
  }

  function wire() {
    $("f-apply").product_id.addEventListener("change", termsFor);
    bind("f-qualification", function (form, data) {
      return api("PUT", "/customers/" + current.id + "/qualification", data)
        .then(function (c) { renderCard(c); toast("资质已保存"); });
    });
    bind("f-fields", function (form, data) {
      return api("PUT", "/customers/" + current.id + "/fields", data)
        .then(function (c) { renderCard(c); toast("自定义字段已保存"); });
    });
    bind("f-tag", function (form, data) {
      return api("POST", "/customers/" + current.id + "/tags", { tag_id: Number(data.tag_id) })
        .then(function (c) { renderCard(c); toast("标签已添加"); });
    });
    bind("f-followup", function (form, data) {
      return api("POST", "/customers/" + current.id + "/followups", { content: data.content })
        .then(function (c) { renderCard(c); form.reset(); toast("跟进已保存"); });
    });
    bind("f-reminder", function (form, data) {
      return api("POST", "/customers/" + current.id + "/reminders", { title: data.title, due_at: data.due_at })
        .then(function (r) { form.reset(); toast("已设置提醒：" + r.due_at); });
    });
    bind("f-share", function (form, data, button) {
      var kind = button ? button.value : "news";
      return api("POST", "/customers/" + current.id + "/share", { kind: kind, product_id: Number(data.product_id) })
        .then(function (message) { return sdk().sendChatMessage(message); })
        .then(function () { toast(kind === "news" ? "产品卡片已发送" : "小程序申请链接已发送"); });
    });
    bind("f-apply", function (form, data) {
      var key = "sb-" + current.id + "-" + Date.now();
      return api("POST", "/customers/" + current.id + "/applications", {
        product_id: Number(data.product_id), amount: data.amount, term_months: Number(data.term_months), idempotency_key: key
      }).then(function (r) { renderCard(r.card); form.reset(); termsFor(); toast("已发起申请 #" + r.id); });
    });
  }

  function openCustomer(id) {
    status("正在加载客户…");
    return api("GET", "/customers/" + id).then(renderCard);
  }

  function showGroup(chatId) {
    return api("GET", "/chat/" + encodeURIComponent(chatId)).then(function (g) {
      text($("group-name"), g.chat.name);
      text($("group-note"), "群内客户 " + g.external_members + " 位，您可查看 " + g.customers.length + " 位");
      fill($("group-list"), g.customers, "群里没有您负责或可查看的客户", function (c) {
        var item = li([["body", c.name + " " + c.phone_masked], ["meta", c.stage]]);
        item.tabIndex = 0;
        item.className = "pick";
        item.addEventListener("click", function () { openCustomer(c.id).catch(function (e) { fail(e.message); }); });
        return item;
      });
      show("group", true);
      status("");
    });
  }

  function start() {
    var ww = sdk();
    if (!ww) { fail("请在企业微信的聊天侧边栏中打开本页面"); return; }
    ww.register({
      corpId: body.dataset.corp,
      agentId: body.dataset.agent,
      jsApiList: body.dataset.apis.split(","),
      getAgentConfigSignature: function (url) {
        return api("GET", "/agent-config?url=" + encodeURIComponent(url)).then(function (c) {
          return { timestamp: c.timestamp, nonceStr: c.nonceStr, signature: c.signature };
        });
      }
    });
    wire();
    Promise.all([ww.getContext(), loadChoices()]).then(function (all) {
      var entry = all[0].entry;
      if (entry === "group_chat_tools") {
        return ww.getCurExternalChat().then(function (r) { return showGroup(r.chatId); });
      }
      if (entry === "single_chat_tools") {
        return ww.getCurExternalContact().then(function (r) {
          status("正在加载客户…");
          return api("GET", "/contact/" + encodeURIComponent(r.userId)).then(renderCard);
        });
      }
      fail("请从与客户的单聊或客户群的聊天工具栏打开本页面");
    }).catch(function (e) {
      if (e && e.errMsg && /no permission|invalid signature/.test(e.errMsg)) {
        fail("企业微信未通过本应用的签名校验，请联系管理员检查应用配置（可信域名、应用 ID）");
        return;
      }
      fail((e && e.message) || "无法识别当前聊天，请重新打开侧边栏");
    });
  }

  start();
})();
