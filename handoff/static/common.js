/* Relevo console, shared helpers: labels (en/es), DOM building with text only, the JSON API with the
   CSRF header, the live WebSocket with heartbeat and reconnect, times, the new-handoff beep.
   Plain JavaScript, no build step. Nothing from a customer, an agent or a record is ever parsed as
   HTML: every text goes through textContent. Exposes one global, window.RelevoConsole. */
(function () {
  "use strict";

  var TEXTS = {
    en: {
      // shared
      brand: "Relevo", loading: "Loading…", logout: "Log out", online: "Online", away: "Away",
      offline: "Offline", connected: "Live", reconnecting: "Reconnecting…", none: "—",
      errorGeneric: "Something went wrong ({status}). Try again.", errorNetwork: "No connection to Relevo.",
      forbidden: "You may not do that.", close: "Close", agentConsole: "Agent console",
      supervisorView: "Supervisor view", language: "Language", seconds: "{n} s", minutes: "{n} min",
      hours: "{n} h {m} min", days: "{n} d", ago: "{t} ago", justNow: "just now",
      // login
      loginTitle: "Sign in", name: "Name", password: "Password", signIn: "Sign in",
      signingIn: "Signing in…", badCredentials: "Wrong name or password.",
      lockedOut: "Too many attempts. Try again in {n} minutes, or ask an administrator to unlock your name.",
      loggedOut: "You are signed out.", fillBoth: "Enter your name and password.",
      sessionEnded: "Your sign-in has ended. Sign in again to carry on: what you were writing is kept.",
      accountDisabled: "This account is disabled; ask an administrator.",
      signedOutDisabled: "You were signed out because this account is disabled; ask an administrator.",
      // agent console
      queue: "Queue", claimNext: "Claim next", mine: "My conversations", noneWaiting: "Nobody is waiting.",
      noneMine: "No conversations assigned to you.", waited: "waiting {t}", capacity: "Load {load} of {capacity}",
      presence: "Presence", notifyOn: "Enable notifications", newHandoff: "New handoff",
      assignedToYou: "A conversation was given to you", customerWrote: "{customer} wrote",
      newHandoffBody: "{customer} ({channel}, {lang}) — {reasons}", emptyQueue: "Nobody is waiting.",
      webVisitor: "Web visitor {id}",
      pickOne: "Claim the next conversation or open one from the queue.", claim: "Claim",
      claiming: "Claiming the next conversation…",
      open: "Open", transcript: "Transcript", reply: "Reply", note: "Private note", send: "Send",
      addNote: "Add note", replyPlaceholder: "Write to the customer…",
      notePlaceholder: "A note for colleagues; the customer never sees it…",
      canned: "Canned replies", cannedSearch: "Search the FAQ answers…", cannedNone: "No answer matches.",
      insert: "Insert", context: "Handoff", summary: "Summary", reasons: "Reasons", upsetWords: "Upset words",
      mood: "Mood score {score}", candidates: "FAQ candidates the bot considered", earlier: "Earlier conversations",
      beforeBot: "Before this conversation, with the bot (last message {when})",
      notes: "Notes", noNotes: "No notes yet.", actions: "Actions", transfer: "Transfer",
      department: "Department", transferTo: "Transfer to department", escalate: "Escalate to tier {tier}",
      escalateTop: "Already at the highest tier", optionalNote: "Note (optional)", release: "Give back to queue",
      returnToBot: "Return to the bot", resolve: "Resolve", outcome: "Outcome", unread: "new",
      customer: "Customer", channel: "Channel", lang: "Language", tier: "Tier", priority: "Priority",
      state: "State", agent: "Agent", rating: "Rating", noRating: "Not rated", stars: "{n} of 5",
      fromCustomer: "Customer", fromBot: "Bot", fromAgent: "Agent", fromSystem: "System", fromNote: "Note",
      attachments: "Attachments", offered: "Buttons offered", viewOnly: "You are viewing this conversation; claim it to reply.",
      supervise: "{agent} has this conversation. As a supervisor you may take it over (the customer is told you joined) or give it back to the front of the queue.",
      takeOver: "Take over", done_taken: "The conversation is yours now.",
      deptClosed: "{name} (closed now)", deptNobody: "{name} (nobody online)",
      done_transferred: "Transferred.", done_escalated: "Escalated.", done_released: "Given back to the queue.",
      done_returned: "Returned to the bot.", done_resolved: "Resolved. The customer is asked for a rating.", done_resolved_unrated: "Resolved.",
      claimedBy: "with {agent}", queued: "queued", assigned: "assigned", empty: "Nobody is waiting.",
      slaAtRisk: "SLA at risk", confirmResolve: "Resolve this conversation?", sent: "Sent",
      confirmReturn: "Return this conversation to the bot? The customer will be talking to the bot again.",
      confirmLogoutOne: "You have 1 open conversation. Give it back to the front of the queue and sign out, so someone else can answer at once?",
      confirmLogoutMany: "You have {n} open conversations. Give them back to the front of the queue and sign out, so someone else can answer at once?",
      handedOver: "handed over {t} ago", email: "E-mail",
      unreachable: "The customer cannot be reached on their channel (they blocked the bot): replies are kept in the transcript but do not reach them.", charsLeft: "{n} / {max}",
      tooLong: "That is longer than {max} characters; shorten it before sending.",
      lostMine: "This conversation is no longer yours: it went back to the queue, another agent took it, or it ended.",
      lostViewed: "Another agent took this conversation, or it is no longer in your queues.",
      draftKept: "Your draft is still in the box: copy it if you need it.",
      notAvailable: "That conversation is no longer available to you.",
      // what became of a conversation that is no longer the agent's, when the console knows (A11)
      lostTakenOver: "{agent} took this conversation over.",
      lostClaimedFirst: "{agent} claimed this conversation first.",
      lostClaimedBy: "{agent} claimed this conversation.",
      lostLapsed: "This conversation is no longer yours: your claim lapsed and it went back to the queue.",
      lostAbandoned: "The customer left this conversation.",
      lostYou_resolved: "You resolved this conversation in another tab.",
      lostYou_returned_to_bot: "You returned this conversation to the bot in another tab.",
      lostYou_transferred: "You transferred this conversation in another tab.",
      lostYou_escalated: "You escalated this conversation in another tab.",
      lostYou_released: "You gave this conversation back to the queue in another tab.",
      lostBy_resolved: "{agent} resolved this conversation.",
      lostBy_returned_to_bot: "{agent} returned this conversation to the bot.",
      lostBy_transferred: "{agent} transferred this conversation.",
      lostBy_escalated: "{agent} escalated this conversation.",
      lostBy_released: "{agent} gave this conversation back to the queue.",
      // the agent's recent conversations (GET /api/mine/recent)
      recent: "Recent", noneRecent: "No conversations of yours ended in the last 7 days.",
      viewEnded: "This conversation has ended: you are reading it.",
      left_returned_to_bot: "Returned to the bot", left_abandoned: "The customer left",
      left_transferred: "Transferred to {to}", left_escalated: "Escalated to {to}",
      left_released: "Given back to the queue", left_lease_lapsed: "Claim lapsed",
      left_assigned: "Taken over by {agent}", left_sla_breach: "Moved up (SLA breached)", byWhom: "by {agent}",
      slaOverdue: "SLA breached ({t} over)",
      sessionChanged: "Your session changed (you signed in again elsewhere); reload the page.",
      // codes of failed requests (the server's "error"), shown instead of its English message
      err_csrf: "Your session changed (you signed in again elsewhere); reload the page.",
      // 503 while Relevo's Redis is away (handoff/api/errors.py): the request changed nothing
      err_unavailable: "Relevo cannot reach its database right now; nothing was sent. Try again in a moment.",
      err_not_yours: "This conversation is assigned to someone else.",
      err_not_assigned: "This conversation is not assigned any more.",
      err_gone: "This conversation is not waiting any more, or it has ended.",
      err_full: "You already have as many conversations as you can take.",
      err_not_allowed: "That queue is not one of yours.", err_disabled: "Your account is disabled.",
      err_account_disabled: "This account is disabled; ask an administrator.",
      err_origin: "Relevo refused this page's address (another host, or http instead of https): open the console at Relevo's own address.",
      err_moved: "The conversation kept moving; try again.", err_busy: "This conversation is already handed over.",
      err_unknown_department: "There is no such department.", err_bad_tier: "There is no such tier.",
      err_bad_outcome: "Choose an outcome from the list.", err_no_outcome: "Choose an outcome from the list.",
      err_too_large: "That is too long for Relevo.", err_bad_request: "Relevo could not accept that: {message}",
      err_not_found: "Relevo does not know that conversation.", err_empty: "Nobody is waiting.",
      // server texts of SLA breaches in the timeline
      detail_first_reply_overdue: "first reply overdue", detail_resolution_overdue: "resolution overdue",
      // supervisor
      floor: "Floor", queues: "Queues", length: "Waiting", oldestWait: "Oldest wait", breached: "Breached",
      atRisk: "At risk", agents: "Agents", load: "Load", departments: "Departments", conversations: "Conversations",
      kbStale: "Knowledge base not reloaded: {error}. The bot still answers from version {version}; " +
        "later edits wait until this is fixed.",
      kbEmpty: "No knowledge base loaded: {error}. The bot cannot answer questions until it is fixed.",
      kbMisrouted: "Knowledge base loaded with a routing problem: {error}.",
      bConversations: "Bot: {n} conversations", bConversations1: "Bot: 1 conversation",
      bContained: "{p} % finished without a person", bAnswered: "{n} answers", bAnswered1: "1 answer", bHelpful: "{p} % found helpful (of {n} who answered \"Did this help?\")",
      bHelpful1: "{p} % found helpful (of 1 who answered \"Did this help?\")",
      bNotUnderstood: "{n} not understood", bHandedOver: "{n} handoffs to a person", bHandedOver1: "1 handoff to a person",
      breaches: "SLA breaches", noBreaches: "No SLA breaches.", kind: "Kind", overdue: "Overdue",
      records: "Escalation records", from: "From", to: "To", reason: "Reason", any: "Any", apply: "Apply",
      exportCsv: "Export CSV", when: "When", events: "Events", noRecords: "No records match.",
      mHandoffs: "{n} handoffs", mHandoff: "1 handoff", mSolved: "{n} solved ({p} %)", mAbandoned: "{n} left the queue",
      mOpen: "{n} still open", mWait: "median wait for a person {t}", mHandle: "median handling {t}",
      mRating: "average rating {r} ({n} rated)",
      timeline: "Timeline", event: "Event", actor: "By", detail: "Detail", route: "From → to",
      pickRecord: "Choose a record to see its timeline.",
      handoffOf: "Handover {n} of {total} in this conversation:",
      firstReply: "First reply", resolution: "Resolution",
      disabledAgent: "disabled", handledBy: "Handled by", commentEvent: "comment", ratingComment: "Comment: {text}",
      handledByHelp: "Everyone who had the conversation, at any point, not only the last one",
      customerHelp: "Part of the customer's name, e-mail address or conversation id",
      // The supervisor view's unanswered questions.
      unanswered: "Unanswered questions",
      unansweredHelp: "What customers asked that the bot did not understand, whose answer did not help, or " +
        "for which none of the suggestions it offered was chosen, grouped by wording, the most asked first. Download them as a draft FAQ file, write the answers, " +
        "then check it with relevo faq check before copying it into config/faq.",
      period: "Period", lastDay: "Last 24 hours", lastDays: "Last {n} days",
      downloadDraft: "Download draft FAQ file", timesAsked: "Times asked", question: "Question",
      lastSeen: "Last asked", noUnanswered: "No unanswered questions in this period.",
      unansweredSummary: "Questions not answered: {noted}. Groups shown: {groups}.",
      unansweredCapped: "Grouped from the newest {n} questions of the period.",
      unansweredAnsweredNow: "Left out: {n} the knowledge base answers by now.",
      wording1: "1 wording", wordings: "{n} wordings", nearEntries: "Closest FAQ entries: {list}",
      kind_not_understood: "not understood", kind_not_helpful: "answer did not help",
      kind_not_chosen: "suggested, none chosen",
      // one's own password (every page), and the admin page's agents
      changePassword: "Change password", currentPassword: "Current password", newPassword: "New password",
      newPasswordAgain: "New password again", passwordRule: "8 to 200 characters.", cancel: "Cancel",
      passwordsDiffer: "The two new passwords are not the same.", fillAll: "Fill in every field.",
      done_ownPassword: "Password changed. Your other sessions were signed out.",
      err_wrong_password: "The current password is wrong.",
      err_locked: "Too many wrong passwords. Try again in 15 minutes, or ask an admin to set a new one.",
      adminView: "Agent administration", manageAgents: "Manage agents", addAgent: "Add agent",
      loginName: "Login name", loginNameHelp: "Lower-case letters, digits, '-', '_', '.'; it cannot be changed later.",
      displayName: "Display name", displayNameHelp: "The name customers see; empty: the login name.",
      role: "Role", role_agent: "Agent", role_supervisor: "Supervisor", role_admin: "Admin",
      capacityLabel: "Capacity", status: "Status", active: "active", save: "Save", disable: "Disable",
      enable: "Enable", setPassword: "Set password", deleteAgent: "Delete", you: "you", noAgents: "No agents yet.",
      passwordFor: "New password for {name}", firstPassword: "Password",
      confirmDisable: "Disable {name}? They are signed out everywhere at once and their API tokens stop working.",
      confirmDelete: "Delete {name}? The records keep the name; the account cannot be brought back.",
      done_added: "Added {name}.", done_saved: "Saved {name}.", nothingChanged: "Nothing to save.",
      done_disabled: "{name} is disabled: {sessions} sessions ended, {tokens} API tokens revoked.",
      done_enabled: "{name} can sign in again with their password.",
      done_password: "New password set for {name}: {sessions} sessions ended, {tokens} API tokens revoked.",
      done_deleted: "{name} deleted.",
      err_agent_exists: "There is already an agent with that login name.",
      err_no_such_agent: "That agent does not exist any more; reload the page.",
      err_not_yourself: "You cannot do that to your own account; another admin can.",
      lockedOutAgent: "locked out", unlock: "Unlock",
      lockedOutHelp: "Too many wrong passwords: their sign-in is refused for up to 15 minutes. Unlock lets them in at once with the same password.",
      done_unlocked: "{name} can sign in again at once.",
      openInConsole: "Open in console",
      openInConsoleHelp: "Open this conversation in the agent console, where you may take it over or give it back to the queue."
    },
    es: {
      brand: "Relevo", loading: "Cargando…", logout: "Cerrar sesión", online: "Disponible", away: "Ausente",
      offline: "Desconectado", connected: "En directo", reconnecting: "Reconectando…", none: "—",
      errorGeneric: "Algo ha fallado ({status}). Inténtalo de nuevo.", errorNetwork: "Sin conexión con Relevo.",
      forbidden: "No tienes permiso para hacer eso.", close: "Cerrar", agentConsole: "Consola de agente",
      supervisorView: "Vista de supervisión", language: "Idioma", seconds: "{n} s", minutes: "{n} min",
      hours: "{n} h {m} min", days: "{n} d", ago: "hace {t}", justNow: "ahora mismo",
      loginTitle: "Iniciar sesión", name: "Nombre", password: "Contraseña", signIn: "Entrar",
      signingIn: "Entrando…", badCredentials: "Nombre o contraseña incorrectos.",
      lockedOut: "Demasiados intentos. Vuelve a probar dentro de {n} minutos o pide a un administrador que " +
        "desbloquee tu nombre.",
      loggedOut: "Has cerrado la sesión.", fillBoth: "Escribe tu nombre y tu contraseña.",
      sessionEnded: "Tu sesión ha terminado. Vuelve a iniciarla para seguir: lo que estabas escribiendo se conserva.",
      accountDisabled: "Esta cuenta está desactivada; pregunta a un administrador.",
      signedOutDisabled: "Se ha cerrado tu sesión porque esta cuenta está desactivada; pregunta a un administrador.",
      queue: "Cola", claimNext: "Atender siguiente", mine: "Mis conversaciones", noneWaiting: "No espera nadie.",
      noneMine: "No tienes conversaciones asignadas.", waited: "espera {t}", capacity: "Carga {load} de {capacity}",
      presence: "Estado", notifyOn: "Activar avisos", newHandoff: "Nueva derivación",
      assignedToYou: "Te han asignado una conversación", customerWrote: "{customer} ha escrito",
      newHandoffBody: "{customer} ({channel}, {lang}) — {reasons}", emptyQueue: "No espera nadie.",
      webVisitor: "Visitante web {id}",
      pickOne: "Atiende la siguiente conversación o abre una de la cola.", claim: "Atender",
      claiming: "Buscando la siguiente conversación…",
      open: "Abrir", transcript: "Conversación", reply: "Respuesta", note: "Nota privada", send: "Enviar",
      addNote: "Añadir nota", replyPlaceholder: "Escribe al cliente…",
      notePlaceholder: "Una nota para compañeros; el cliente nunca la ve…",
      canned: "Respuestas predefinidas", cannedSearch: "Busca en las respuestas de las FAQ…",
      cannedNone: "Ninguna respuesta coincide.", insert: "Insertar", context: "Derivación", summary: "Resumen",
      reasons: "Motivos", upsetWords: "Palabras de enfado", mood: "Enfado {score}",
      candidates: "Preguntas frecuentes que consideró el bot", earlier: "Conversaciones anteriores",
      beforeBot: "Antes de esta conversación, con el bot (último mensaje {when})",
      notes: "Notas", noNotes: "Aún no hay notas.", actions: "Acciones", transfer: "Transferir",
      department: "Departamento", transferTo: "Transferir al departamento", escalate: "Escalar al nivel {tier}",
      escalateTop: "Ya está en el nivel más alto", optionalNote: "Nota (opcional)", release: "Devolver a la cola",
      returnToBot: "Devolver al bot", resolve: "Resolver", outcome: "Resultado", unread: "nuevo",
      customer: "Cliente", channel: "Canal", lang: "Idioma", tier: "Nivel", priority: "Prioridad",
      state: "Estado", agent: "Agente", rating: "Valoración", noRating: "Sin valorar", stars: "{n} de 5",
      fromCustomer: "Cliente", fromBot: "Bot", fromAgent: "Agente", fromSystem: "Sistema", fromNote: "Nota",
      attachments: "Adjuntos", offered: "Botones ofrecidos", viewOnly: "Estás viendo esta conversación; atiéndela para responder.",
      supervise: "{agent} tiene esta conversación. Como supervisor puedes quedártela (se avisa al cliente de que te has unido) o devolverla al primer lugar de la cola.",
      takeOver: "Quedármela", done_taken: "La conversación ya es tuya.",
      deptClosed: "{name} (cerrado ahora)", deptNobody: "{name} (nadie conectado)",
      done_transferred: "Transferida.", done_escalated: "Escalada.", done_released: "Devuelta a la cola.",
      done_returned: "Devuelta al bot.", done_resolved: "Resuelta. Se pide al cliente una valoración.", done_resolved_unrated: "Resuelta.",
      claimedBy: "con {agent}", queued: "en cola", assigned: "asignada", empty: "No espera nadie.",
      slaAtRisk: "SLA en riesgo", confirmResolve: "¿Resolver esta conversación?", sent: "Enviado",
      confirmReturn: "¿Devolver esta conversación al bot? El cliente volverá a hablar con el bot.",
      confirmLogoutOne: "Tienes 1 conversación abierta. ¿Devolverla al primer lugar de la cola y salir, para que otra persona la atienda ya?",
      confirmLogoutMany: "Tienes {n} conversaciones abiertas. ¿Devolverlas al primer lugar de la cola y salir, para que otra persona las atienda ya?",
      handedOver: "derivada hace {t}", email: "Correo",
      unreachable: "No se puede contactar con el cliente por su canal (ha bloqueado el bot): las respuestas quedan en la conversación pero no le llegan.", charsLeft: "{n} / {max}",
      tooLong: "Tiene más de {max} caracteres; acórtalo antes de enviarlo.",
      lostMine: "Esta conversación ya no es tuya: volvió a la cola, la atendió otra persona o terminó.",
      lostViewed: "Otra persona ha atendido esta conversación, o ya no está en tus colas.",
      draftKept: "Tu borrador sigue en el cuadro: cópialo si lo necesitas.",
      notAvailable: "Esa conversación ya no está disponible para ti.",
      lostTakenOver: "{agent} se ha quedado esta conversación.",
      lostClaimedFirst: "{agent} atendió esta conversación antes que tú.",
      lostClaimedBy: "{agent} ha atendido esta conversación.",
      lostLapsed: "Esta conversación ya no es tuya: tu reserva caducó y volvió a la cola.",
      lostAbandoned: "El cliente dejó esta conversación.",
      lostYou_resolved: "Resolviste esta conversación en otra pestaña.",
      lostYou_returned_to_bot: "Devolviste esta conversación al bot en otra pestaña.",
      lostYou_transferred: "Transferiste esta conversación en otra pestaña.",
      lostYou_escalated: "Escalaste esta conversación en otra pestaña.",
      lostYou_released: "Devolviste esta conversación a la cola en otra pestaña.",
      lostBy_resolved: "{agent} ha resuelto esta conversación.",
      lostBy_returned_to_bot: "{agent} ha devuelto esta conversación al bot.",
      lostBy_transferred: "{agent} ha transferido esta conversación.",
      lostBy_escalated: "{agent} ha escalado esta conversación.",
      lostBy_released: "{agent} ha devuelto esta conversación a la cola.",
      recent: "Recientes", noneRecent: "Ninguna conversación tuya ha terminado en los últimos 7 días.",
      viewEnded: "Esta conversación ha terminado: la estás leyendo.",
      left_returned_to_bot: "Devuelta al bot", left_abandoned: "El cliente se fue",
      left_transferred: "Transferida a {to}", left_escalated: "Escalada a {to}",
      left_released: "Devuelta a la cola", left_lease_lapsed: "Reserva caducada",
      left_assigned: "{agent} se la quedó", left_sla_breach: "Subida de nivel (SLA incumplido)", byWhom: "por {agent}",
      slaOverdue: "SLA incumplido ({t} de retraso)",
      sessionChanged: "Tu sesión ha cambiado (has vuelto a entrar en otra pestaña); recarga la página.",
      err_csrf: "Tu sesión ha cambiado (has vuelto a entrar en otra pestaña); recarga la página.",
      err_unavailable: "Relevo no puede conectar con su base de datos ahora mismo; no se ha enviado nada. "
        + "Inténtalo de nuevo en un momento.",
      err_not_yours: "Esta conversación la tiene otra persona.",
      err_not_assigned: "Esta conversación ya no está asignada.",
      err_gone: "Esta conversación ya no está esperando, o ha terminado.",
      err_full: "Ya tienes todas las conversaciones que puedes atender.",
      err_not_allowed: "Esa cola no es de las tuyas.", err_disabled: "Tu cuenta está desactivada.",
      err_account_disabled: "Esta cuenta está desactivada; pregunta a un administrador.",
      err_origin: "Relevo ha rechazado la dirección de esta página (otro nombre, o http en lugar de https): abre la consola en la dirección de Relevo.",
      err_moved: "La conversación no paraba de moverse; inténtalo de nuevo.",
      err_busy: "Esta conversación ya está derivada.",
      err_unknown_department: "Ese departamento no existe.", err_bad_tier: "Ese nivel no existe.",
      err_bad_outcome: "Elige un resultado de la lista.", err_no_outcome: "Elige un resultado de la lista.",
      err_too_large: "Es demasiado largo para Relevo.", err_bad_request: "Relevo no ha podido aceptarlo: {message}",
      err_not_found: "Relevo no conoce esa conversación.", err_empty: "No espera nadie.",
      detail_first_reply_overdue: "primera respuesta con retraso", detail_resolution_overdue: "resolución con retraso",
      floor: "Sala", queues: "Colas", length: "En espera", oldestWait: "Espera más larga", breached: "Incumplidos",
      atRisk: "En riesgo", agents: "Agentes", load: "Carga", departments: "Departamentos",
      kbStale: "La base de conocimiento no se ha recargado: {error}. El bot sigue respondiendo con la " +
        "versión {version}; los cambios posteriores esperan a que se corrija.",
      kbEmpty: "No hay base de conocimiento cargada: {error}. El bot no puede responder preguntas hasta " +
        "que se corrija.",
      kbMisrouted: "Base de conocimiento cargada con un problema de enrutamiento: {error}.",
      bConversations: "Bot: {n} conversaciones", bConversations1: "Bot: 1 conversación",
      bContained: "{p} % terminadas sin una persona", bAnswered: "{n} respuestas", bAnswered1: "1 respuesta",
      bHelpful: "{p} % útiles (de {n} que respondieron a \"¿Te ha servido?\")", bHelpful1: "{p} % útiles (de 1 que respondió a \"¿Te ha servido?\")",
      bNotUnderstood: "{n} sin entender", bHandedOver: "{n} derivaciones a una persona", bHandedOver1: "1 derivación a una persona",
      conversations: "Conversaciones", breaches: "SLA incumplidos", noBreaches: "Ningún SLA incumplido.",
      kind: "Tipo", overdue: "Retraso", records: "Registro de derivaciones", from: "Desde", to: "Hasta",
      reason: "Motivo", any: "Cualquiera", apply: "Aplicar", exportCsv: "Exportar CSV", when: "Cuándo",
      events: "Eventos", noRecords: "Ningún registro coincide.",
      mHandoffs: "{n} derivaciones", mHandoff: "1 derivación", mSolved: "{n} resueltas ({p} %)",
      mAbandoned: "{n} dejaron la cola", mOpen: "{n} aún abiertas", mWait: "espera mediana hasta una persona {t}",
      mHandle: "atención mediana {t}", mRating: "valoración media {r} ({n} valoraciones)", timeline: "Cronología", event: "Evento",
      actor: "Por", detail: "Detalle", route: "De → a", pickRecord: "Elige un registro para ver su cronología.",
      handoffOf: "Derivación {n} de {total} de esta conversación:",
      firstReply: "Primera respuesta", resolution: "Resolución", disabledAgent: "desactivado",
      handledBy: "Atendida por", commentEvent: "comentario", ratingComment: "Comentario: {text}",
      handledByHelp: "Todas las personas que tuvieron la conversación, en algún momento, no solo la última",
      customerHelp: "Parte del nombre del cliente, de su correo o del identificador de la conversación",
      unanswered: "Preguntas sin respuesta",
      unansweredHelp: "Lo que preguntaron los clientes y el bot no entendió, cuya respuesta no sirvió, o " +
        "para lo que no eligieron ninguna de las sugerencias que ofreció, agrupado por redacción, lo más preguntado primero. Descárgalo como borrador de FAQ, escribe las " +
        "respuestas y compruébalo con relevo faq check antes de copiarlo en config/faq.",
      period: "Periodo", lastDay: "Últimas 24 horas", lastDays: "Últimos {n} días",
      downloadDraft: "Descargar borrador de FAQ", timesAsked: "Veces", question: "Pregunta",
      lastSeen: "Última vez", noUnanswered: "No hay preguntas sin respuesta en este periodo.",
      unansweredSummary: "Preguntas sin respuesta: {noted}. Grupos mostrados: {groups}.",
      unansweredCapped: "Agrupadas de las {n} preguntas más recientes del periodo.",
      unansweredAnsweredNow: "Omitidas: {n} que la base de conocimiento ya responde.",
      wording1: "1 redacción", wordings: "{n} redacciones", nearEntries: "Entradas de FAQ más cercanas: {list}",
      kind_not_understood: "no entendida", kind_not_helpful: "la respuesta no sirvió",
      kind_not_chosen: "sugerencias, ninguna elegida",
      changePassword: "Cambiar contraseña", currentPassword: "Contraseña actual", newPassword: "Contraseña nueva",
      newPasswordAgain: "Repite la contraseña nueva", passwordRule: "De 8 a 200 caracteres.", cancel: "Cancelar",
      passwordsDiffer: "Las dos contraseñas nuevas no coinciden.", fillAll: "Rellena todos los campos.",
      done_ownPassword: "Contraseña cambiada. Se han cerrado tus otras sesiones.",
      err_wrong_password: "La contraseña actual no es correcta.",
      err_locked: "Demasiadas contraseñas incorrectas. Vuelve a probar dentro de 15 minutos o pide a un administrador que te ponga una nueva.",
      adminView: "Administración de agentes", manageAgents: "Gestionar agentes", addAgent: "Añadir agente",
      loginName: "Nombre de acceso", loginNameHelp: "Minúsculas, dígitos, '-', '_', '.'; no se puede cambiar después.",
      displayName: "Nombre visible", displayNameHelp: "El nombre que ven los clientes; vacío: el nombre de acceso.",
      role: "Rol", role_agent: "Agente", role_supervisor: "Supervisor", role_admin: "Administrador",
      capacityLabel: "Capacidad", status: "Estado", active: "activo", save: "Guardar", disable: "Desactivar",
      enable: "Activar", setPassword: "Poner contraseña", deleteAgent: "Borrar", you: "tú", noAgents: "Aún no hay agentes.",
      passwordFor: "Contraseña nueva para {name}", firstPassword: "Contraseña",
      confirmDisable: "¿Desactivar a {name}? Se cierran sus sesiones en todas partes y sus tokens de API dejan de funcionar.",
      confirmDelete: "¿Borrar a {name}? Los registros conservan el nombre; la cuenta no se puede recuperar.",
      done_added: "{name} añadido.", done_saved: "{name} guardado.", nothingChanged: "No hay nada que guardar.",
      done_disabled: "{name} desactivado: {sessions} sesiones cerradas, {tokens} tokens de API revocados.",
      done_enabled: "{name} puede volver a entrar con su contraseña.",
      done_password: "Contraseña nueva para {name}: {sessions} sesiones cerradas, {tokens} tokens de API revocados.",
      done_deleted: "{name} borrado.",
      err_agent_exists: "Ya hay un agente con ese nombre de acceso.",
      err_no_such_agent: "Ese agente ya no existe; recarga la página.",
      err_not_yourself: "No puedes hacerle eso a tu propia cuenta; otro administrador sí puede.",
      lockedOutAgent: "bloqueado", unlock: "Desbloquear",
      lockedOutHelp: "Demasiadas contraseñas incorrectas: se le impide entrar durante hasta 15 minutos. Desbloquear le deja entrar ya con la misma contraseña.",
      done_unlocked: "{name} ya puede volver a entrar.",
      openInConsole: "Abrir en la consola",
      openInConsoleHelp: "Abre esta conversación en la consola de agente, donde puedes quedártela o devolverla a la cola."
    }
  };

  var REASONS = {
    en: {
      low_confidence: "low confidence", repeated_misunderstanding: "not understood",
      asked_for_person: "asked for a person", upset: "upset", negative_feedback: "answer did not help",
      topic_rule: "topic needs a person", keyword_rule: "keyword rule", sla_breach: "SLA breached",
      sla_at_risk: "SLA at risk"
    },
    es: {
      low_confidence: "confianza baja", repeated_misunderstanding: "no entendido",
      asked_for_person: "pidió una persona", upset: "enfadado", negative_feedback: "la respuesta no sirvió",
      topic_rule: "tema para una persona", keyword_rule: "regla de palabras", sla_breach: "SLA incumplido",
      sla_at_risk: "SLA en riesgo"
    }
  };

  /* What an agent picks when resolving (the server's OUTCOMES, in this order). */
  var OUTCOMES = {
    en: { solved: "Solved", not_solved: "Not solved", duplicate: "Duplicate", spam: "Spam", other: "Other" },
    es: { solved: "Resuelto", not_solved: "No resuelto", duplicate: "Duplicado", spam: "Spam", other: "Otro" }
  };

  /* A record may also end without a resolution (handoff/api/handoffs.py summarise): these are filters, not choices. */
  var RECORD_ENDINGS = {
    en: { returned_to_bot: "Returned to the bot", abandoned: "Abandoned", resolved: "Resolved" },
    es: { returned_to_bot: "Devuelta al bot", abandoned: "Abandonada", resolved: "Resuelta" }
  };

  var STATES = {
    en: { bot: "with the bot", queued: "queued", assigned: "assigned", resolved: "resolved", closed: "closed" },
    es: { bot: "con el bot", queued: "en cola", assigned: "asignada", resolved: "resuelta", closed: "cerrada" }
  };

  /* What a customer may send besides text (bot/channels/telegram/inbound.py ATTACHMENT_KINDS). */
  var ATTACHMENT_KINDS = {
    en: {
      animation: "GIF", photo: "Photo", video: "Video", video_note: "Video message", voice: "Voice message",
      audio: "Audio", document: "Document", sticker: "Sticker", venue: "Place", location: "Location",
      contact: "Contact", poll: "Poll", dice: "Dice", story: "Story"
    },
    es: {
      animation: "GIF", photo: "Foto", video: "Vídeo", video_note: "Videomensaje", voice: "Mensaje de voz",
      audio: "Audio", document: "Documento", sticker: "Sticker", venue: "Lugar", location: "Ubicación",
      contact: "Contacto", poll: "Encuesta", dice: "Dado", story: "Historia"
    }
  };

  var SLA_KINDS = {
    en: { first_reply: "First reply", resolution: "Resolution" },
    es: { first_reply: "Primera respuesta", resolution: "Resolución" }
  };

  var PRIORITIES = {
    en: { low: "low", normal: "normal", high: "high", urgent: "urgent" },
    es: { low: "baja", normal: "normal", high: "alta", urgent: "urgente" }
  };

  var EVENTS = {
    en: {
      queued: "queued", claimed: "claimed", assigned: "assigned", transferred: "transferred",
      escalated: "escalated", released: "given back", lease_lapsed: "lease lapsed", resolved: "resolved",
      returned_to_bot: "returned to bot", abandoned: "abandoned", sla_breach: "SLA breach", rated: "rated"
    },
    es: {
      queued: "en cola", claimed: "atendida", assigned: "asignada", transferred: "transferida",
      escalated: "escalada", released: "devuelta", lease_lapsed: "reserva caducada", resolved: "resuelta",
      returned_to_bot: "devuelta al bot", abandoned: "abandonada", sla_breach: "SLA incumplido",
      rated: "valorada"
    }
  };

  /* The server writes reason details, the mood detector's evidence labels and the handoff summary in
     English (the API stays so). A console in another language says the fixed part in its own words; the
     customer's words inside stay exactly as they are, and anything not known here is shown as sent. */
  var DETAILS = {
    es: [
      [/^the customer asked for a person$/, "el cliente pidió una persona"],
      [/^the customer chose to talk to a person$/, "el cliente eligió hablar con una persona"],
      [/^asked for a person \(([^()]*)\)$/, "pidió una persona ({1})"],
      [/^mood (\d+(?:\.\d+)?) \(this message (\d+(?:\.\d+)?)\)$/, "enfado {1} (este mensaje {2})"],
      [/^mood score (\d+(?:\.\d+)?)$/, "nivel de enfado {1}"],
      [/^confidence (\d+(?:\.\d+)?) after clarifying$/, "confianza {1} tras pedir una aclaración"],
      [/^not understood (\d+) times in a row$/, "no entendido {1} veces seguidas"],
      [/^(\d+) messages in a row not understood$/, "{1} mensajes seguidos sin entender"],
      [/^answer '(.*)' did not help$/, "la respuesta «{1}» no sirvió"],
      [/^entry '(.*)' hands off to (.*)$/, "la entrada «{1}» pasa a {2}"],
      [/^entry (\S+): (\S+) tier (\d+)$/, "entrada {1}: {2}, nivel {3}"],
      [/^first_reply target missed by (\d+)s$/, "objetivo de primera respuesta incumplido por {1} s"],
      [/^resolution target missed by (\d+)s$/, "objetivo de resolución incumplido por {1} s"],
      [/^first reply overdue by (\d+)s \(top tier and priority\)$/,
       "primera respuesta con {1} s de retraso (nivel y prioridad máximos)"],
      [/^first reply overdue$/, "primera respuesta con retraso"],
      [/^resolution overdue$/, "resolución con retraso"],
      [/^escalated$/, "derivada"]
    ]
  };

  /* The mood detector's labels ('insult: "…"', 'shouting (capitals)'): the label is ours, the quoted
     words are the customer's. */
  var EVIDENCE = {
    es: {
      negative: "negativo", insult: "insulto", profanity: "palabrota", "threat to leave": "amenaza con irse",
      "threat to complain": "amenaza con reclamar", dissatisfaction: "insatisfacción", negated: "negado",
      calm: "calma", sarcasm: "sarcasmo", insisting: "insiste", elongation: "letras alargadas",
      "repeated question": "pregunta repetida", emoji: "emoji"
    }
  };
  var EVIDENCE_WHOLE = { es: { "shouting (capitals)": "gritos (mayúsculas)" } };
  var BUTTON_DETAIL = "the customer chose to talk to a person"; // its evidence "button" is ours, not theirs

  /* handoff/summary.py's sentence, from its pieces (summary_parts). */
  var SUMMARY = {
    es: {
      reasons: {
        keyword_rule: "regla {detail}", upset: "enfadado", sla_breach: "SLA incumplido",
        negative_feedback: "la respuesta no sirvió", asked_for_person: "pidió una persona",
        topic_rule: "tema para una persona", repeated_misunderstanding: "el bot no entendió",
        low_confidence: "el bot no estaba seguro"
      },
      wants: "Quiere: {q}", last: "Lo último: {q}", tried: "El bot probó: {list}", messages: "{n} mensajes",
      message1: "1 mensaje", earlier: "{n} conversaciones anteriores", earlier1: "1 conversación anterior",
      backBot: "de vuelta tras una conversación con el bot", button: "botón"
    }
  };
  var SUMMARY_ORDER = ["keyword_rule", "upset", "sla_breach", "negative_feedback", "asked_for_person", "topic_rule",
                       "repeated_misunderstanding", "low_confidence"];
  var QUOTE_CHARS = 120;
  var MAX_SUMMARY_CHARS = 400;

  var HEARTBEAT_MS = 10000;
  var MAX_BACKOFF_MS = 30000;

  var LANG_KEY = "relevo.console.lang";
  var LANG_COOKIE = "relevo_lang"; // handoff/api/refused.py LANG_COOKIE

  function storedLang() {
    try { return localStorage.getItem(LANG_KEY) || ""; } catch (e) { return ""; } // storage may be off
  }

  function storeLang(code) {
    try { localStorage.setItem(LANG_KEY, code); } catch (e) { /* then the links carry it alone */ }
    cookieLang(code);
  }

  /* The server writes one page itself (a page the role may not open): the cookie tells it the language. */
  function cookieLang(code) {
    try { document.cookie = LANG_COOKIE + "=" + code + "; path=/; max-age=31536000; samesite=strict"; } catch (e) { /* none */ }
  }

  /* ?lang= wins and is remembered, so moving between /login, /agent and /supervisor keeps it; without
     one, the language chosen earlier; else the browser's. `chosen` says whether links must carry it. */
  function pickLang() {
    var asked = String(new URLSearchParams(location.search).get("lang") || "").slice(0, 2).toLowerCase();
    if (TEXTS[asked]) { storeLang(asked); return { code: asked, chosen: true }; }
    var stored = storedLang();
    if (TEXTS[stored]) { cookieLang(stored); return { code: stored, chosen: true }; }
    var browser = String(navigator.language || "en").slice(0, 2).toLowerCase();
    return { code: TEXTS[browser] ? browser : "en", chosen: false };
  }

  var picked = pickLang();
  var lang = picked.code;
  var T = TEXTS[lang];

  /* A link to another console page, carrying a chosen language (a new tab has no ?lang= of its own). */
  function withLang(path) {
    if (!picked.chosen || /[?&]lang=/.test(path)) { return path; }
    return path + (path.indexOf("?") < 0 ? "?" : "&") + "lang=" + lang;
  }

  function fmt(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (_, k) {
      return values && values[k] != null ? String(values[k]) : "";
    });
  }

  function t(key, values) { return fmt(T[key] != null ? T[key] : TEXTS.en[key] != null ? TEXTS.en[key] : key, values); }
  function reasonLabel(code) { return REASONS[lang][code] || String(code); }
  function outcomeLabel(code) { return OUTCOMES[lang][code] || RECORD_ENDINGS[lang][code] || String(code || ""); }
  function priorityLabel(code) { return PRIORITIES[lang][code] || String(code || ""); }
  function eventLabel(code) { return EVENTS[lang][code] || String(code || ""); }
  function stateLabel(code) { return STATES[lang][code] || String(code || ""); }
  function slaKindLabel(code) { return SLA_KINDS[lang][code] || String(code || ""); }

  /* A customer's stars as the pages show them, "★★★★☆ 4 of 5"; "" when there are none. */
  function ratingText(rating) {
    var score = rating && typeof rating === "object" ? rating.score : rating;
    if (score == null || score === "") { return ""; }
    var n = Math.max(0, Math.min(5, Math.round(Number(score)) || 0));
    return "★".repeat(n) + "☆".repeat(5 - n) + " " + t("stars", { n: Number(score) });
  }

  function detailText(detail) {
    var text = String(detail == null ? "" : detail);
    var found = null;
    (DETAILS[lang] || []).some(function (pair) {
      var m = pair[0].exec(text);
      if (m) { found = pair[1].replace(/\{(\d)\}/g, function (_, i) { return m[Number(i)] || ""; }); }
      return !!m;
    });
    return found != null ? found : text;
  }

  /* One piece of evidence of a reason (the reason, when known, tells our "button" from a customer's). */
  function evidenceText(item, reason) {
    var text = String(item == null ? "" : item);
    if (!EVIDENCE[lang]) { return text; }
    if (text === "button" && reason && reason.detail === BUTTON_DETAIL) { return SUMMARY[lang].button; }
    if (EVIDENCE_WHOLE[lang][text]) { return EVIDENCE_WHOLE[lang][text]; }
    var m = /^([a-z ]+): ([\s\S]*)$/.exec(text);
    return m && EVIDENCE[lang][m[1]] ? EVIDENCE[lang][m[1]] + ": " + m[2] : text;
  }

  function quoted(text) {
    var one = String(text).split(/\s+/).filter(Boolean).join(" ");
    return '"' + (one.length > QUOTE_CHARS ? one.slice(0, QUOTE_CHARS - 1) + "…" : one) + '"';
  }

  /* The handoff summary in the console's language: the server's own sentence in English, else said again
     from its pieces as handoff/summary.py says it. */
  function summaryText(parts, fallback) {
    var S = SUMMARY[lang];
    if (!S || !parts || typeof parts !== "object") { return String(fallback || ""); }
    var byCode = {};
    (parts.reasons || []).forEach(function (r) { if (r && SUMMARY_ORDER.indexOf(r.code) >= 0) { byCode[r.code] = r; } });
    var labels = SUMMARY_ORDER.filter(function (c) { return byCode[c]; }).map(function (code) {
      var r = byCode[code];
      var label = fmt(S.reasons[code], { detail: r.detail || "" });
      var evidence = Array.isArray(r.evidence) ? r.evidence : [];
      if (code === "upset") {
        var words = (parts.mood_words && parts.mood_words.length ? parts.mood_words : evidence).slice(0, 3);
        var inside = [];
        if (parts.mood_score != null) { inside.push(Number(parts.mood_score).toFixed(2)); }
        if (words.length) {
          inside.push(words.map(function (w) {
            return /[:"(]/.test(String(w)) ? evidenceText(w, r) : "'" + String(w) + "'";
          }).join(", "));
        }
        if (inside.length) { label += " (" + inside.join(", ") + ")"; }
      } else if ((code === "keyword_rule" || code === "asked_for_person") && evidence.length) {
        label += " ('" + evidenceText(evidence[0], r) + "')";
      }
      return label;
    });
    var head = labels.join("; ");
    var out = [head.charAt(0).toUpperCase() + head.slice(1)];
    if (parts.wants) { out.push(fmt(S.wants, { q: quoted(parts.wants) })); }
    if (parts.last) { out.push(fmt(S.last, { q: quoted(parts.last) })); }
    var tried = (parts.tried || []).slice(0, 2).map(function (c) { return String(c[0]) + " " + Number(c[1]).toFixed(2); });
    if (tried.length) { out.push(fmt(S.tried, { list: tried.join(", ") })); }
    var n = Number(parts.messages) || 0;
    var who = [parts.lang, parts.channel, n === 1 ? S.message1 : fmt(S.messages, { n: n })].filter(Boolean);
    var earlier = Number(parts.earlier) || 0;
    if (earlier) { who.push(earlier === 1 ? S.earlier1 : fmt(S.earlier, { n: earlier })); }
    if (Number(parts.before) > 0) { who.push(S.backBot); }
    out.push(who.join(", "));
    var text = out.filter(Boolean).join(". ") + ".";
    return text.length <= MAX_SUMMARY_CHARS ? text : text.slice(0, MAX_SUMMARY_CHARS - 1) + "…";
  }

  // -- DOM: text only --------------------------------------------------------------------------------

  /* Bidi overrides, embeddings and isolates a customer typed would reorder what an agent reads
     ("refund \u202Egnp.exe" shows as "refund exe.png"): every text set through el() shows them as U+FFFD. */
  var BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

  function plain(text) {
    return String(text).replace(BIDI_CONTROLS, "\uFFFD");
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text != null) { node.textContent = plain(text); }
    return node;
  }

  function clear(node) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
    return node;
  }

  function option(value, label, selected) {
    var o = el("option", null, label);
    o.value = value;
    if (selected) { o.selected = true; }
    return o;
  }

  function button(label, cls, onClick) {
    var b = el("button", cls || "btn", label);
    b.type = "button";
    if (onClick) { b.addEventListener("click", onClick); }
    return b;
  }

  /* Labels of the static page: data-i18n (text), data-i18n-placeholder, data-i18n-title, data-i18n-aria. */
  function applyLabels(root) {
    root = root || document;
    document.documentElement.lang = lang;
    Array.prototype.forEach.call(root.querySelectorAll("[data-i18n]"), function (n) {
      n.textContent = t(n.getAttribute("data-i18n"));
    });
    Array.prototype.forEach.call(root.querySelectorAll("[data-i18n-placeholder]"), function (n) {
      n.placeholder = t(n.getAttribute("data-i18n-placeholder"));
    });
    Array.prototype.forEach.call(root.querySelectorAll("[data-i18n-title]"), function (n) {
      n.title = t(n.getAttribute("data-i18n-title"));
    });
    Array.prototype.forEach.call(root.querySelectorAll("[data-i18n-aria]"), function (n) {
      n.setAttribute("aria-label", t(n.getAttribute("data-i18n-aria")));
    });
    Array.prototype.forEach.call(root.querySelectorAll("a[data-lang-link]"), function (a) {
      a.href = withLang(a.getAttribute("href"));
    });
    var title = document.querySelector("title[data-i18n-doc]");
    if (title) { document.title = t(title.getAttribute("data-i18n-doc")) + " — Relevo"; }
  }

  /* A short message in the page's alert line (role=alert), cleared after a while. */
  var flashTimer = null;
  function flash(message, kind) {
    var box = document.getElementById("flash");
    if (!box) { return; }
    clearTimeout(flashTimer);
    box.textContent = message || "";
    box.className = "flash" + (kind ? " flash-" + kind : "");
    box.hidden = !message;
    if (message) { flashTimer = setTimeout(function () { box.hidden = true; }, kind === "error" ? 9000 : 5000); }
  }

  // -- times -----------------------------------------------------------------------------------------

  /* Timestamps arrive as ms, s or ISO text: all become ms. */
  function toMs(ts) {
    if (ts == null || ts === "") { return null; }
    if (typeof ts === "number") { return ts > 1e11 ? ts : ts * 1000; }
    if (/^\d+(\.\d+)?$/.test(String(ts))) { return toMs(Number(ts)); }
    var parsed = Date.parse(String(ts));
    return isNaN(parsed) ? null : parsed;
  }

  function duration(seconds) {
    var s = Math.max(0, Math.round(Number(seconds) || 0));
    if (s < 60) { return t("seconds", { n: s }); }
    if (s < 3600) { return t("minutes", { n: Math.floor(s / 60) }); }
    if (s < 86400) { return t("hours", { n: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) }); }
    return t("days", { n: Math.floor(s / 86400) });
  }

  function relative(ts) {
    var ms = toMs(ts);
    if (ms == null) { return ""; }
    var s = (Date.now() - ms) / 1000;
    return s < 10 ? t("justNow") : t("ago", { t: duration(s) });
  }

  function clock(ts) {
    var ms = toMs(ts);
    if (ms == null) { return ""; }
    var d = new Date(ms);
    var today = new Date();
    var opts = d.toDateString() === today.toDateString()
      ? { hour: "2-digit", minute: "2-digit" }
      : { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
    return d.toLocaleString(lang, opts);
  }

  function isoTitle(ts) {
    var ms = toMs(ts);
    return ms == null ? "" : new Date(ms).toISOString();
  }

  // -- the API -----------------------------------------------------------------------------------------

  var csrf = "";
  var signedInAs = null; // the agent this page was opened for: a CSRF token of anyone else is not taken

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code || "";
    this.message = message || "";
  }

  /* The sign-in ended under an open page (expired, signed out elsewhere, a new password): the login page
     says so ("ended"), and brings the agent back here. */
  function loginUrl() {
    return withLang("/login?next=" + encodeURIComponent(location.pathname + location.search) + "&ended");
  }

  /* fetch + JSON + CSRF. 401 leaves for the login page; other failures reject with an ApiError.
     A 403 "csrf" means the cookie now belongs to a newer sign-in (another tab logged in again): the
     token is fetched again and the request sent once more. */
  function api(method, path, body, retried) {
    // Signed out: a poll or heartbeat due meanwhile would only earn a 401 before the page leaves.
    if (leaving) { return new Promise(function () {}); }
    var headers = { "Accept": "application/json" };
    var init = { method: method, credentials: "same-origin", headers: headers, cache: "no-store" };
    var unsafe = method !== "GET" && method !== "HEAD";
    if (unsafe) {
      headers["X-Relevo-CSRF"] = csrf;
      if (body !== undefined) {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
    }
    return fetch(path, init).then(function (response) {
      if (response.status === 401 && path !== "/api/login") {
        location.assign(loginUrl());
        return new Promise(function () {}); // the page is leaving
      }
      if (response.status === 204) { return null; }
      var type = response.headers.get("Content-Type") || "";
      var parsed = type.indexOf("json") >= 0 ? response.json().catch(function () { return null; })
                                                : Promise.resolve(null);
      return parsed.then(function (data) {
        if (response.ok) { return data; }
        data = data || {};
        if (response.status === 403 && data.error === "csrf" && unsafe && !retried && path !== "/api/login") {
          return renewCsrf().then(function () { return api(method, path, body, true); });
        }
        var failed = new ApiError(response.status, data.error, data.message);
        failed.retryAfter = Number(response.headers.get("Retry-After")) || 0; // seconds, on a 429
        throw failed;
      });
    }, function () {
      throw new ApiError(0, "network", t("errorNetwork"));
    });
  }

  /* The token of the session the cookie holds now, if it is still the same agent; otherwise the page
     would act as someone else: it must be reloaded. */
  function renewCsrf() {
    return api("GET", "/api/me").then(function (data) {
      var name = data && data.agent && data.agent.name;
      if (!data || !data.csrf || (signedInAs && name !== signedInAs)) {
        throw new ApiError(403, "csrf", t("sessionChanged"));
      }
      csrf = data.csrf;
    });
  }

  /* What to tell a person about a failed call: a text of our own for the server's error code where
     there is one (its message is English), else its message for 409, 400 and 429. */
  function errorText(err) {
    if (!(err instanceof ApiError)) { return t("errorGeneric", { status: "?" }); }
    if (err.status === 0) { return t("errorNetwork"); }
    if (err.code && T["err_" + err.code] != null) { return t("err_" + err.code, { message: err.message }); }
    if (err.status === 403) { return t("forbidden"); }
    if (err.message && (err.status === 409 || err.status === 400 || err.status === 429)) { return err.message; }
    return t("errorGeneric", { status: err.status });
  }

  function reportError(err) {
    if (window.console) { console.warn("relevo:", err && (err.code || err.message || err)); }
    flash(errorText(err), "error");
  }

  function me() {
    return api("GET", "/api/me").then(function (data) {
      var name = data && data.agent && data.agent.name;
      if (signedInAs && name !== signedInAs) { return data; } // someone else now: keep the old token
      signedInAs = name || null;
      csrf = (data && data.csrf) || "";
      return data;
    });
  }

  /* To the login page with its "You are signed out." (?bye), in the same language. */
  var leaving = false;

  function logout() {
    var out = api("POST", "/api/logout");
    leaving = true;
    return out.catch(function () { return null; }).then(function () {
      location.assign(withLang("/login?bye"));
    });
  }

  // -- the live socket -------------------------------------------------------------------------------

  /* /api/ws with a heartbeat every 10 s, reconnecting with backoff and jitter. `onOpen(reconnected)`
     is where the page re-fetches its state: frames sent while it was away are not replayed. A heartbeat
     says "at my console": it makes the agent online (wait estimates, automatic routing) and keeps their
     claims; a page that only watches (`present: false`, the supervisor floor) sends none. */
  function Live(handlers) {
    this.handlers = handlers;
    this.ws = null;
    this.attempt = 0;
    this.opened = false;
    this.timer = null;
    this.beat = null;
    this.watching = null;
    this.stopped = false;
  }

  Live.prototype.connect = function () {
    var self = this;
    if (self.stopped || leaving) { return; }
    if (self.ws && (self.ws.readyState === WebSocket.OPEN || self.ws.readyState === WebSocket.CONNECTING)) { return; }
    clearTimeout(self.timer);
    self.timer = null;
    var url = new URL("/api/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    var socket = self.ws = new WebSocket(url.href);
    socket.addEventListener("open", function () {
      var again = self.opened;
      self.opened = true;
      self.attempt = 0;
      if (self.watching) { self.send({ type: "watch", conversation_id: self.watching }); }
      clearInterval(self.beat);
      if (self.handlers.present !== false) {
        self.send({ type: "heartbeat" });
        self.beat = setInterval(function () { self.send({ type: "heartbeat" }); }, HEARTBEAT_MS);
      }
      if (self.handlers.onState) { self.handlers.onState(true); }
      if (self.handlers.onOpen) { self.handlers.onOpen(again); }
    });
    socket.addEventListener("message", function (ev) {
      var frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      if (frame && typeof frame === "object" && self.handlers.onFrame) { self.handlers.onFrame(frame); }
    });
    socket.addEventListener("close", function (ev) {
      if (self.ws !== socket) { return; }
      self.ws = null;
      clearInterval(self.beat);
      if (self.handlers.onState) { self.handlers.onState(false); }
      if (ev.code === 4409 && !leaving) {
        // A supervisor changed this agent's role, tier or departments: the page shows what the new
        // rights allow once it loads again.
        location.reload();
        return;
      }
      if (ev.code === 4401 || ev.code === 1008) {
        // The server says the session is gone: check, which sends us to the login page if so.
        me().then(function () { self.schedule(); }, function () { self.schedule(); });
        return;
      }
      self.schedule();
    });
  };

  Live.prototype.schedule = function () {
    var self = this;
    if (self.timer || self.stopped) { return; }
    var delay = Math.min(MAX_BACKOFF_MS, 500 * Math.pow(2, self.attempt)) * (0.5 + Math.random() / 2);
    self.attempt += 1;
    self.timer = setTimeout(function () { self.timer = null; self.connect(); }, delay);
  };

  Live.prototype.send = function (frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  };

  Live.prototype.watch = function (conversationId) {
    // The one we looked at before stops streaming to this socket (unless it is one of ours: the
    // server keeps sending an agent their own conversations).
    if (this.watching && this.watching !== conversationId) {
      this.send({ type: "unwatch", conversation_id: this.watching });
    }
    this.watching = conversationId || null;
    if (conversationId) { this.send({ type: "watch", conversation_id: conversationId }); }
  };

  Live.prototype.isOpen = function () { return !!(this.ws && this.ws.readyState === WebSocket.OPEN); };

  Live.prototype.now = function () {
    // Back online, or the tab woke up: try at once instead of waiting out the backoff.
    if (!this.isOpen()) {
      clearTimeout(this.timer);
      this.timer = null;
      this.attempt = 0;
      this.connect();
    }
  };

  function live(handlers) {
    var l = new Live(handlers);
    window.addEventListener("online", function () { l.now(); });
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { l.now(); } });
    l.connect();
    return l;
  }

  // -- noticing new work: a beep and a desktop notification ------------------------------------------

  var audio = null;

  /* Browsers start audio only after a gesture: the first click or key unlocks it. */
  function unlockAudio() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) { return; }
    try {
      if (!audio) { audio = new Ctx(); }
      if (audio.state === "suspended") { audio.resume(); }
    } catch (e) { audio = null; }
  }
  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("keydown", unlockAudio, { once: true });

  function beep() {
    if (!audio || audio.state !== "running") { return; }
    try {
      var now = audio.currentTime;
      [0, 0.18].forEach(function (offset, i) {
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        osc.type = "sine";
        osc.frequency.value = i ? 1175 : 880;
        gain.gain.setValueAtTime(0.0001, now + offset);
        gain.gain.exponentialRampToValueAtTime(0.2, now + offset + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.16);
        osc.connect(gain);
        gain.connect(audio.destination);
        osc.start(now + offset);
        osc.stop(now + offset + 0.17);
      });
    } catch (e) { /* no sound is not an error */ }
  }

  function canNotify() { return "Notification" in window; }

  function askNotify() {
    if (!canNotify() || Notification.permission !== "default") { return Promise.resolve(); }
    return Promise.resolve(Notification.requestPermission()).catch(function () { return null; });
  }

  function notify(title, body, tag) {
    if (!canNotify() || Notification.permission !== "granted" || !document.hidden) { return; }
    try {
      var n = new Notification(title, { body: body, tag: tag || "relevo", lang: lang });
      n.onclick = function () { window.focus(); n.close(); };
    } catch (e) { /* some browsers only notify from a service worker */ }
  }

  // -- shared renderings: a transcript line, a private note ------------------------------------------

  function messageNode(m) {
    var from = ["customer", "bot", "agent", "system", "note"].indexOf(m.from) >= 0 ? m.from : "system";
    var li = el("li", "msg msg-" + from);
    if (m.id != null) { li.setAttribute("data-id", String(m.id)); }
    var head = el("div", "msg-head");
    var label = { customer: "fromCustomer", bot: "fromBot", agent: "fromAgent", system: "fromSystem", note: "fromNote" }[from];
    head.appendChild(el("span", "msg-from", t(label)));
    if (m.author && from !== "customer") { head.appendChild(el("span", "msg-author", m.author)); }
    var when = el("time", "msg-time", clock(m.ts));
    when.dateTime = isoTitle(m.ts);
    when.title = isoTitle(m.ts);
    head.appendChild(when);
    li.appendChild(head);
    li.appendChild(el("div", "msg-text", m.text || ""));
    var files = Array.isArray(m.attachments) ? m.attachments : [];
    if (files.length) {
      var ul = el("ul", "msg-files");
      ul.setAttribute("aria-label", t("attachments"));
      files.forEach(function (f) { ul.appendChild(attachmentNode(f)); });
      li.appendChild(ul);
    }
    // The buttons the customer saw under it: what the bot offered and they turned down, or chose.
    var offered = Array.isArray(m.buttons) ? m.buttons : [];
    if (offered.length) {
      var opts = el("ul", "msg-buttons");
      opts.setAttribute("aria-label", t("offered"));
      offered.forEach(function (label) { opts.appendChild(el("li", "msg-button", String(label))); });
      li.appendChild(opts);
    }
    return li;
  }

  /* A file the customer sent: what it is (a photo, a document…) and, after it, its caption or name. */
  function attachmentNode(f) {
    var li = el("li", "msg-file");
    var obj = f && typeof f === "object" ? f : {};
    var kind = typeof f === "string" ? "" : String(obj.kind || "");
    var name = typeof f === "string" ? f : String(obj.caption || obj.name || "");
    if (kind) {
      var known = Object.prototype.hasOwnProperty.call(ATTACHMENT_KINDS[lang], kind);
      li.appendChild(el("span", "file-kind", known ? ATTACHMENT_KINDS[lang][kind] : kind));
      if (name) { li.appendChild(document.createTextNode(": ")); }
    }
    if (!kind && !name) { name = "?"; }
    if (!name) { return li; }
    var url = String(obj.url || "");
    if (/^(https?:\/\/|\/(?!\/))/.test(url)) {
      var a = el("a", null, name);
      a.href = url;
      a.rel = "noopener noreferrer";
      a.target = "_blank";
      li.appendChild(a);
    } else {
      li.appendChild(el("span", "file-caption", name));
    }
    return li;
  }

  function noteNode(n) {
    var li = el("li", "note");
    if (n.id != null) { li.setAttribute("data-id", String(n.id)); }
    var head = el("div", "note-head");
    head.appendChild(el("strong", null, n.author || ""));
    var when = el("time", "muted", clock(n.ts));
    when.title = isoTitle(n.ts);
    head.appendChild(when);
    li.appendChild(head);
    li.appendChild(el("div", "note-text", n.text || ""));
    return li;
  }

  /* Who the customer is, as agents read it. Widget visitors give no name: their key "web:<session>"
     reads "Web visitor 1aJj1Z" (the start of the session, enough to tell two apart at a glance). */
  function customerLabel(customer, fallback) {
    var who = String(customer || fallback || "");
    var web = /^web:([A-Za-z0-9_-]+)$/.exec(who);
    return web ? t("webVisitor", { id: web[1].slice(0, 6) }) : plain(who);
  }

  /* ?next= must stay on this site: a path, never "//host" or a scheme. */
  function safeNext(raw, fallback) {
    var next = String(raw || "");
    return /^\/(?![\/\\])[^\s]*$/.test(next) ? next : fallback;
  }

  // -- passwords: one's own (every page), and the admin setting someone's ---------------------------

  function passwordField(labelKey, autocomplete) {
    var label = el("label", "pw-field");
    label.appendChild(el("span", null, t(labelKey)));
    var input = el("input");
    input.type = "password";
    input.required = true;
    input.maxLength = 200;
    input.autocomplete = autocomplete;
    label.appendChild(input);
    return { label: label, input: input };
  }

  /* A modal <dialog> asking for passwords: `fields` are [labelKey, autocomplete] pairs; the last two must
     match. `send(values)` returns the request's promise; the dialog closes once it succeeds. */
  function passwordDialog(title, fields, send, submitKey) {
    var dialog = el("dialog", "pw-dialog");
    var form = el("form", "pw-form");
    form.noValidate = true;
    form.appendChild(el("h2", null, title));
    var inputs = fields.map(function (f) {
      var field = passwordField(f[0], f[1]);
      form.appendChild(field.label);
      return field.input;
    });
    form.appendChild(el("p", "muted pw-rule", t("passwordRule")));
    var error = el("p", "login-error pw-error");
    error.setAttribute("role", "alert");
    error.hidden = true;
    form.appendChild(error);
    var row = el("div", "pw-buttons");
    row.appendChild(button(t("cancel"), "btn", function () { dialog.close(); }));
    var submit = el("button", "btn btn-primary pw-submit", t(submitKey || "changePassword"));
    submit.type = "submit";
    row.appendChild(submit);
    form.appendChild(row);
    dialog.appendChild(form);
    dialog.addEventListener("close", function () { dialog.remove(); });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var values = inputs.map(function (i) { return i.value; });
      function fail(text) { error.textContent = text; error.hidden = false; }
      if (values.some(function (v) { return !v; })) { return fail(t("fillAll")); }
      if (values[values.length - 1] !== values[values.length - 2]) { return fail(t("passwordsDiffer")); }
      submit.disabled = true;
      error.hidden = true;
      send(values).then(function () { dialog.close(); }, function (err) { fail(errorText(err)); })
        .then(function () { submit.disabled = false; });
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    inputs[0].focus();
    return dialog;
  }

  /* The "Change password" button of a page: the agent's own, given the current one. This browser stays
     signed in; their other sessions and API tokens end (POST /api/me/password). */
  function wireOwnPassword(buttonId) {
    var b = document.getElementById(buttonId);
    if (!b) { return; }
    b.addEventListener("click", function () {
      var dialog = passwordDialog(t("changePassword"), [["currentPassword", "current-password"],
        ["newPassword", "new-password"], ["newPasswordAgain", "new-password"]], function (values) {
        return api("POST", "/api/me/password", { current: values[0], "new": values[1] }).then(function () {
          flash(t("done_ownPassword"), "ok");
        });
      });
      dialog.id = "own-password";
    });
  }

  window.RelevoConsole = {
    lang: lang, t: t, fmt: fmt, reasonLabel: reasonLabel, outcomeLabel: outcomeLabel, eventLabel: eventLabel,
    has: function (key) { return TEXTS.en[key] != null; },
    priorityLabel: priorityLabel, stateLabel: stateLabel, slaKindLabel: slaKindLabel, withLang: withLang,
    ratingText: ratingText,
    detailText: detailText, evidenceText: evidenceText, summaryText: summaryText,
    OUTCOMES: Object.keys(OUTCOMES.en), RECORD_OUTCOMES: Object.keys(OUTCOMES.en).concat(["returned_to_bot", "abandoned"]),
    REASONS: Object.keys(REASONS.en).filter(function (k) { return k !== "sla_at_risk"; }),
    el: el, plain: plain, clear: clear, option: option, button: button, applyLabels: applyLabels, flash: flash,
    toMs: toMs, duration: duration, relative: relative, clock: clock, isoTitle: isoTitle,
    api: api, ApiError: ApiError, errorText: errorText, reportError: reportError, me: me, logout: logout,
    loginUrl: loginUrl, live: live, beep: beep, askNotify: askNotify, notify: notify, canNotify: canNotify,
    safeNext: safeNext, messageNode: messageNode, noteNode: noteNode, customerLabel: customerLabel,
    passwordDialog: passwordDialog, wireOwnPassword: wireOwnPassword
  };
})();
