// Chinese and English UI text. The choice is kept in localStorage; the default follows the browser.
const KEY = "strongroom.lang";

const TEXT = {
  en: {
    "login.username": "Username", "login.password": "Password", "login.submit": "Log in",
    "login.failed": "Invalid username or password.", "login.throttled": "Too many attempts: wait and try again.",
    "login.unreachable": "The server cannot be reached.",
    "nav.search": "Search", "nav.alerts": "Alerts", "nav.audit": "Audit", "nav.charts": "Charts", "nav.users": "Users",
    "nav.roles": "Roles", "nav.keys": "API keys", "nav.logout": "Log out", "nav.record": "Record",
    "lang.other": "中文",
    "purpose.label": "Purpose (case number)", "purpose.placeholder": "e.g. CASE-2026-117",
    "purpose.invalid": "The purpose must be printable ASCII, at most 256 characters.",
    "budget.label": "Records left this hour:", "budget.left": "{left} of {limit}", "budget.unlimited": "unlimited",
    "budget.unknown": "unknown", "budget.reveals": "Reveals left: {left} of {limit}",
    "common.loading": "Loading…", "common.save": "Save", "common.edit": "Edit", "common.delete": "Delete",
    "common.done": "Done.", "common.yes": "yes", "common.no": "no", "common.confirm_delete": "Delete {name}?",
    "search.index": "Index", "search.box": "Name, national ID or phone", "search.placeholder": "张伟 · 110101199001011234 · 13812345678",
    "search.birthplace": "Birthplace", "search.years": "Born (years)", "search.gender": "Gender", "search.any": "any",
    "search.male": "male", "search.female": "female", "search.submit": "Search",
    "search.help": "Searches are audited with the purpose above; every record shown counts against your budget.",
    "search.kind.name": "Searching by name", "search.kind.national_id": "Searching by national ID",
    "search.kind.phone": "Searching by phone number", "search.empty": "Type a name, a national ID or a phone number, or set a filter.",
    "search.none": "No records found.", "search.total": "{shown} shown of {total}", "search.open": "Open",
    "field.name": "Name", "field.gender": "Gender", "field.birth_date": "Birth date", "field.birthplace": "Birthplace",
    "field.national_id": "National ID", "field.phone": "Phone", "field.address": "Address", "field.case_notes": "Case notes",
    "record.title": "Record", "record.noid": "No record selected.", "record.missing": "No such record (or not visible to you).",
    "record.reveal": "Reveal", "record.reveal_purpose": "Purpose (case number)", "record.reveal_confirm": "Reveal this field",
    "record.reveal_cancel": "Cancel", "record.revealed": "Revealed for {purpose}; recorded in the audit trail.",
    "record.reveal_denied": "Your roles do not allow revealing this field.", "record.reveal_budget": "Reveal budget exhausted: {reason}",
    "record.reveal_note": "Masked values are shown as your role allows. Revealing one needs a purpose; each reveal is audited and counts against your reveal budget.",
    "alerts.kind": "Kind", "alerts.updated": "Updated {time}; refreshed every 10 s.", "alerts.none": "No alerts.",
    "alerts.blocked": "Blocked identities", "alerts.noblocks": "No identity is blocked.", "alerts.evidence": "Evidence",
    "alerts.block": "Block", "alerts.unblock": "Unblock", "alerts.reason": "blocked from the console",
    "alerts.until_lifted": "until lifted",
    "alerts.col.time": "Time", "alerts.col.kind": "Kind", "alerts.col.identity": "Identity", "alerts.col.summary": "Summary",
    "alerts.col.evidence": "Evidence", "alerts.col.reason": "Reason", "alerts.col.expires": "Expires",
    "alert.canary": "canary touched", "alert.budget_exhausted": "budget exceeded", "alert.probe_budget_exhausted": "probe budget exceeded", "alert.reveal_budget_exhausted": "reveal budget exceeded",
    "alert.dump_pattern": "dump pattern",
    "audit.identity": "Identity", "audit.action": "Action", "audit.index": "Index", "audit.outcome": "Outcome",
    "audit.purpose": "Purpose contains", "audit.hide_console": "Hide console page loads", "audit.outcome.ok": "ok", "audit.outcome.refused": "refused", "audit.outcome.error": "error",
    "audit.verifying": "Verifying the audit chain…", "audit.chain_ok": "Audit chain verified: {records} records, {checkpoints} signed checkpoints ({when}).",
    "audit.chain_bad": "AUDIT CHAIN BROKEN at record {seq}: {reason} ({when})", "audit.chain_running": "A verification is running.",
    "audit.unsigned_tail": "Records from {from} on are not signed by a checkpoint yet.", "audit.none": "No records.",
    "audit.col.seq": "#", "audit.col.time": "Time", "audit.col.identity": "Identity", "audit.col.auth": "Auth",
    "audit.col.method": "Method", "audit.col.path": "Path", "audit.col.purpose": "Purpose", "audit.col.status": "Status",
    "audit.col.revealed": "Records", "audit.col.fields": "Fields revealed",
    "users.edit": "Create or update a user", "users.name": "Username", "users.password": "Password",
    "users.password_hint": "Leave empty to keep the password of an existing user.", "users.roles": "Roles (comma-separated)",
    "users.full_name": "Full name", "users.enabled": "Enabled", "users.enable": "Enable", "users.disable": "Disable",
    "roles.edit": "Create or update a role", "roles.name": "Role name", "roles.indices": "Indices", "roles.cluster": "Cluster privileges",
    "roles.index_rights": "Index rights", "roles.grant": "Fields shown (grant)", "roles.except": "Fields hidden (except)",
    "roles.query": "Document query (JSON)", "roles.require_purpose": "Require a purpose", "roles.masks": "Masks",
    "roles.add_mask": "Add a mask", "roles.limits": "Limits", "roles.json": "JSON view",
    "roles.json_hint": "The form writes this JSON; you may edit it directly before saving.",
    "roles.bad_json": "The JSON view is not valid JSON.", "roles.bad_query": "The document query is not valid JSON.",
    "keys.create": "Create an API key", "keys.name": "Name", "keys.expiration": "Expires after (e.g. 30d)",
    "keys.id": "ID", "keys.owner": "Owner", "keys.state": "State", "keys.never": "never", "keys.invalidated": "invalidated",
    "keys.valid": "valid", "keys.invalidate": "Invalidate", "keys.none": "No API keys.",
    "keys.shown_once": "The key, shown only now (base64 for the ApiKey header):",
    "charts.reveals": "Records revealed per identity over time", "charts.alerts": "Alerts over time",
    "charts.indices": "Documents per index", "charts.no_data": "No data yet.",
  },
  zh: {
    "login.username": "用户名", "login.password": "密码", "login.submit": "登录",
    "login.failed": "用户名或密码错误。", "login.throttled": "尝试次数过多，请稍后再试。", "login.unreachable": "无法连接服务器。",
    "nav.search": "查询", "nav.alerts": "告警", "nav.audit": "审计", "nav.charts": "图表", "nav.users": "用户",
    "nav.roles": "角色", "nav.keys": "API 密钥", "nav.logout": "退出", "nav.record": "档案",
    "lang.other": "English",
    "purpose.label": "用途（案件编号）", "purpose.placeholder": "例如 CASE-2026-117",
    "purpose.invalid": "用途只能是可打印的 ASCII 字符，最多 256 个。",
    "budget.label": "本小时剩余记录：", "budget.left": "{left} / {limit}", "budget.unlimited": "不限", "budget.unknown": "未知", "budget.reveals": "剩余显示次数：{left} / {limit}",
    "common.loading": "加载中…", "common.save": "保存", "common.edit": "编辑", "common.delete": "删除",
    "common.done": "完成。", "common.yes": "是", "common.no": "否", "common.confirm_delete": "删除 {name}？",
    "search.index": "索引", "search.box": "姓名、身份证号或手机号", "search.placeholder": "张伟 · 110101199001011234 · 13812345678",
    "search.birthplace": "出生地", "search.years": "出生年份", "search.gender": "性别", "search.any": "不限",
    "search.male": "男", "search.female": "女", "search.submit": "查询",
    "search.help": "每次查询连同上方的用途记入审计；显示的每条记录都计入您的额度。",
    "search.kind.name": "按姓名查询", "search.kind.national_id": "按身份证号查询", "search.kind.phone": "按手机号查询",
    "search.empty": "请输入姓名、身份证号或手机号，或设置筛选条件。",
    "search.none": "未找到记录。", "search.total": "显示 {shown} 条，共 {total} 条", "search.open": "查看",
    "field.name": "姓名", "field.gender": "性别", "field.birth_date": "出生日期", "field.birthplace": "出生地",
    "field.national_id": "身份证号", "field.phone": "手机号", "field.address": "住址", "field.case_notes": "案件备注",
    "record.title": "档案", "record.noid": "未选择记录。", "record.missing": "没有该记录（或您无权查看）。",
    "record.reveal": "显示", "record.reveal_purpose": "用途（案件编号）", "record.reveal_confirm": "显示该字段",
    "record.reveal_cancel": "取消", "record.revealed": "已按用途 {purpose} 显示，并记入审计日志。",
    "record.reveal_denied": "您的角色不允许显示该字段。", "record.reveal_budget": "显示额度已用完：{reason}",
    "record.reveal_note": "遮蔽的值按您的角色显示。显示原值需要填写用途；每次显示都会审计，并计入您的显示额度。",
    "alerts.kind": "类型", "alerts.updated": "更新于 {time}；每 10 秒刷新。", "alerts.none": "没有告警。",
    "alerts.blocked": "已封禁的身份", "alerts.noblocks": "没有被封禁的身份。", "alerts.evidence": "证据",
    "alerts.block": "封禁", "alerts.unblock": "解封", "alerts.reason": "在控制台中封禁", "alerts.until_lifted": "直到解除",
    "alerts.col.time": "时间", "alerts.col.kind": "类型", "alerts.col.identity": "身份", "alerts.col.summary": "摘要",
    "alerts.col.evidence": "证据", "alerts.col.reason": "原因", "alerts.col.expires": "到期",
    "alert.canary": "触碰诱饵记录", "alert.budget_exhausted": "超出额度", "alert.probe_budget_exhausted": "超出探测额度", "alert.reveal_budget_exhausted": "超出显示额度",
    "alert.dump_pattern": "批量导出模式",
    "audit.identity": "身份", "audit.action": "操作", "audit.index": "索引", "audit.outcome": "结果",
    "audit.purpose": "用途包含", "audit.hide_console": "隐藏控制台页面加载", "audit.outcome.ok": "成功", "audit.outcome.refused": "拒绝", "audit.outcome.error": "错误",
    "audit.verifying": "正在校验审计链…", "audit.chain_ok": "审计链校验通过：{records} 条记录，{checkpoints} 个签名检查点（{when}）。",
    "audit.chain_bad": "审计链在第 {seq} 条记录处断裂：{reason}（{when}）", "audit.chain_running": "校验正在进行。",
    "audit.unsigned_tail": "第 {from} 条起的记录尚未被检查点签名。", "audit.none": "没有记录。",
    "audit.col.seq": "#", "audit.col.time": "时间", "audit.col.identity": "身份", "audit.col.auth": "认证",
    "audit.col.method": "方法", "audit.col.path": "路径", "audit.col.purpose": "用途", "audit.col.status": "状态",
    "audit.col.revealed": "记录数", "audit.col.fields": "显示的字段",
    "users.edit": "创建或修改用户", "users.name": "用户名", "users.password": "密码",
    "users.password_hint": "修改已有用户时留空则保留原密码。", "users.roles": "角色（逗号分隔）",
    "users.full_name": "全名", "users.enabled": "启用", "users.enable": "启用", "users.disable": "停用",
    "roles.edit": "创建或修改角色", "roles.name": "角色名", "roles.indices": "索引", "roles.cluster": "集群权限",
    "roles.index_rights": "索引权限", "roles.grant": "显示的字段（grant）", "roles.except": "隐藏的字段（except）",
    "roles.query": "文档查询（JSON）", "roles.require_purpose": "必须填写用途", "roles.masks": "遮蔽",
    "roles.add_mask": "添加遮蔽", "roles.limits": "限额", "roles.json": "JSON 视图",
    "roles.json_hint": "表单生成此 JSON；保存前也可以直接编辑。",
    "roles.bad_json": "JSON 视图不是有效的 JSON。", "roles.bad_query": "文档查询不是有效的 JSON。",
    "keys.create": "创建 API 密钥", "keys.name": "名称", "keys.expiration": "有效期（例如 30d）",
    "keys.id": "ID", "keys.owner": "所有者", "keys.state": "状态", "keys.never": "永不", "keys.invalidated": "已作废",
    "keys.valid": "有效", "keys.invalidate": "作废", "keys.none": "没有 API 密钥。",
    "keys.shown_once": "密钥仅显示这一次（ApiKey 请求头使用的 base64）：",
    "charts.reveals": "各身份随时间查看的记录数", "charts.alerts": "告警随时间变化", "charts.indices": "各索引的文档数",
    "charts.no_data": "暂无数据。",
  },
};

export function lang() {
  const saved = localStorage.getItem(KEY);
  if (saved === "zh" || saved === "en") return saved;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

export function setLang(value) {
  localStorage.setItem(KEY, value === "zh" ? "zh" : "en");
}

// t("search.total", {shown: 3, total: 9}); a missing key gives `fallback`, else the key itself.
export function t(key, vars = {}, fallback) {
  const text = TEXT[lang()][key] ?? TEXT.en[key] ?? fallback ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

export function applyI18n(root) {
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
}

export function languageSwitchInto(button) {
  button.textContent = t("lang.other");
  button.id = button.id || "lang-switch";
  button.addEventListener("click", () => {
    setLang(lang() === "zh" ? "en" : "zh");
    window.location.reload();
  });
  return button;
}

export function languageSwitch() {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link";
  button.id = "lang-switch";
  return languageSwitchInto(button);
}

export const KEYS = { en: Object.keys(TEXT.en), zh: Object.keys(TEXT.zh) };
