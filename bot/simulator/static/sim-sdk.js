/* The WeCom client, played for the sidebar iframe: window.wecomSimSdk offers the JS-SDK functions the
   sidebar uses. register() checks the agentConfig signature with the simulator, as WeCom's client
   would; the chat APIs answer only after that check passed. */
(function () {
  "use strict";
  var configured = null;

  function sim() { return document.getElementById("sim"); }

  function failure(api, why) { return { errMsg: api + ":fail " + why }; }

  function ready(api) {
    if (!configured) return Promise.reject(failure(api, "no permission (register first)"));
    return configured.then(function () { return true; }, function () { throw failure(api, "no permission"); });
  }

  function logMessage(message) {
    var log = document.getElementById("sim-log");
    var first = log.querySelector("li.muted");
    if (first) first.remove();
    var item = document.createElement("li");
    item.className = "sent";
    var title = document.createElement("strong");
    var note = document.createElement("small");
    if (message.msgtype === "news") {
      title.textContent = "[产品卡片] " + message.news.title;
      note.textContent = message.news.desc + " · " + message.news.link;
    } else if (message.msgtype === "miniprogram") {
      title.textContent = "[小程序] " + message.miniprogram.title;
      note.textContent = message.miniprogram.appid + " · " + message.miniprogram.page;
    } else {
      title.textContent = "[" + message.msgtype + "]";
      note.textContent = JSON.stringify(message);
    }
    item.appendChild(title);
    item.appendChild(note);
    log.appendChild(item);
  }

  window.wecomSimSdk = {
    register: function (options) {
      var frame = document.getElementById("sim-sidebar");
      var url = frame.contentWindow.location.href.split("#")[0];
      configured = Promise.resolve(options.getAgentConfigSignature(url)).then(function (sig) {
        return fetch(sim().dataset.verify, {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ corpId: options.corpId, agentId: options.agentId, url: url, timestamp: sig.timestamp,
                                 nonceStr: sig.nonceStr, signature: sig.signature })
        }).then(function (res) { return res.json(); }).then(function (answer) {
          if (answer.errcode !== 0) throw new Error(answer.errmsg);
          document.body.dataset.agentConfig = "ok";
          return answer;
        });
      });
      configured.catch(function () { document.body.dataset.agentConfig = "fail"; });
    },
    getContext: function () {
      return Promise.resolve({ errMsg: "getContext:ok", entry: sim().dataset.entry });
    },
    getCurExternalContact: function () {
      return ready("getCurExternalContact").then(function () {
        var ext = sim().dataset.contact;
        if (!ext) throw failure("getCurExternalContact", "without context of external contact");
        return { errMsg: "getCurExternalContact:ok", userId: ext };
      });
    },
    getCurExternalChat: function () {
      return ready("getCurExternalChat").then(function () {
        var chat = sim().dataset.chat;
        if (!chat) throw failure("getCurExternalChat", "without context of external contact");
        return { errMsg: "getCurExternalChat:ok", chatId: chat };
      });
    },
    sendChatMessage: function (message) {
      return ready("sendChatMessage").then(function () {
        logMessage(message);
        return { errMsg: "sendChatMessage:ok" };
      });
    }
  };
})();
