"""Word lists for synthetic screens: control labels, dialogs, instruction templates, typed values.

Every label an instruction names is drawn on the screen it refers to, and labels are unique per
screen, so a target is always identifiable from the instruction and the pixels alone.
"""

from __future__ import annotations

BUTTON_LABELS = (
    "Save", "Cancel", "Submit", "Delete", "Edit", "Share", "Send", "Next", "Back", "Done", "Apply",
    "Reset", "Upload", "Download", "Log in", "Sign up", "Continue", "Retry", "Add", "Remove",
    "Confirm", "Close", "Open", "Export", "Import", "Print", "Copy", "Paste", "Refresh", "Archive",
    "Follow", "Subscribe", "Buy now", "Add to cart", "Checkout", "Skip", "Accept", "Decline",
    "Learn more", "Get started", "Try again", "Book now", "Reply", "Forward", "Invite", "Join",
    "Play", "Pause", "Start", "Stop", "Update", "Install", "Verify", "Pay", "Order", "Track",
)
FIELD_LABELS = (
    "Email", "Password", "Name", "Phone", "Address", "City", "Zip code", "Username", "Message",
    "Subject", "Company", "Website", "Notes", "Title", "Amount", "Country", "First name",
    "Last name", "Comment", "Card number", "Promo code", "Nickname", "Job title", "Birthday",
)
TOGGLE_LABELS = (
    "Wi-Fi", "Bluetooth", "Airplane mode", "Dark mode", "Notifications", "Location",
    "Auto-rotate", "Do not disturb", "Mobile data", "Hotspot", "NFC", "Battery saver", "Sync",
    "Auto update", "Sound", "Vibration", "Private account", "Email alerts", "Push alerts",
    "Autoplay", "Two-factor auth", "Backup", "Night light", "Data saver", "Show previews",
    "Read receipts", "Haptics", "Captions", "Offline mode", "Auto-lock",
)
ROW_LABELS = (
    "Inbox", "Sent", "Drafts", "Photos", "Music", "Documents", "Downloads", "Contacts", "Calendar",
    "Recent", "Favorites", "Trash", "Storage", "Display", "Battery", "Privacy", "Accounts",
    "About phone", "Apps", "Security", "Language", "Help", "Payments", "Orders", "Wallet",
    "Podcasts", "Albums", "Playlists", "Alarms", "Reminders", "Groups", "Events", "Invoices",
    "Projects", "Tasks", "Bookmarks", "History", "Keyboard", "Accessibility", "Updates",
)
ROW_ICONS = ("mail", "image", "star", "user", "calendar", "bell", "lock", "info", "bookmark", "flag",
             "cloud", "pin", "chat", "download", "gear")
TAB_LABELS = (
    "Home", "Search", "Profile", "Library", "Feed", "Chats", "Calls", "Status", "Explore", "Videos",
    "Shop", "Activity", "Friends", "Maps", "News", "Discover", "Saved", "Trending", "Alerts", "Stats",
)
TAB_ICONS = ("home", "search", "user", "bookmark", "star", "chat", "bell", "pin", "cart", "calendar",
             "play", "flag", "cloud", "info")
TITLES = (
    "Dashboard", "My Account", "Preferences", "Overview", "Checkout", "New Post", "Details",
    "Workspace", "Messages", "Media", "Wallet", "Travel", "Weather", "Fitness", "Recipes",
    "Bookings", "Notes App", "Gallery", "Store", "Tickets",
)
HEADINGS = ("Quick actions", "General", "Recent activity", "Account info", "Your items", "Suggestions",
            "Connections", "Today", "Highlights", "More options")
LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip "
    "ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla"
).split()
# (title, message, buttons) of modal dialogs; the first button confirms.
DIALOGS = (
    ("Delete file?", "This cannot be undone.", ("Delete", "Cancel")),
    ("Discard draft?", "Your changes will be lost.", ("Discard", "Keep editing")),
    ("Allow access?", "The app wants to use your location.", ("Allow", "Deny")),
    ("Sign out?", "You will need to log in again.", ("Sign out", "Stay")),
    ("Save changes?", "You have unsaved changes.", ("Save", "Don't save")),
    ("Turn on alerts?", "Get notified about new messages.", ("Enable", "Not now")),
    ("Update available", "Install the latest version now?", ("Install", "Later")),
    ("Remove item?", "It will be removed from your list.", ("Remove", "Keep")),
    ("Leave group?", "You will stop getting its messages.", ("Leave", "Stay")),
    ("Continue?", "Do you want to continue?", ("OK", "Cancel")),
    ("Reset settings?", "All options go back to defaults.", ("Reset", "Cancel")),
    ("Send report?", "Help us fix this problem.", ("Send", "Don't send")),
)
SINGLE_DIALOGS = (
    ("Saved", "Your changes were saved.", ("OK",)),
    ("Update installed", "You are on the latest version.", ("Done",)),
    ("Welcome!", "Thanks for joining us.", ("Got it",)),
)

# One-step instruction templates per target kind ({label}, {title}; toggles use {state}).
TEMPLATES = {
    "button": ("click the '{label}' button", "tap '{label}'", "press the {label} button",
               "select the '{label}' button", "tap the button labeled '{label}'"),
    "icon": ("tap the {label} icon", "click the {label} icon", "press the {label} icon button",
             "select the {label} icon"),
    "field": ("click the '{label}' field", "tap the {label} text field", "focus the '{label}' input",
              "select the {label} box"),
    "toggle": ("turn {state} {label}", "switch {state} {label}", "tap the switch to turn {state} {label}",
               "set {label} {state}"),
    "row": ("open '{label}'", "tap the '{label}' item", "select {label} from the list",
            "click the '{label}' row"),
    "tab": ("switch to the '{label}' tab", "open the {label} tab", "go to the {label} tab",
            "tap the '{label}' tab"),
    "dialog": ("click '{label}' in the dialog", "tap '{label}' on the '{title}' dialog",
               "choose '{label}' in the pop-up", "press {label} in the dialog"),
}

# Values an app task asks the agent to type, per field label (anything else gets WORDS).
FIELD_VALUES = {
    "Email": ("alice@example.com", "bob@mail.org", "sam.lee@work.io", "kim@home.net"),
    "Name": ("Alice Smith", "Bob Jones", "Carol Wu", "Dan Brown", "Eve Adams"),
    "First name": ("Alice", "Bob", "Carol", "Dan", "Maya"),
    "Last name": ("Smith", "Jones", "Garcia", "Nguyen", "Khan"),
    "Phone": ("555-0142", "555-0199", "555-0123", "555-0177"),
    "City": ("Paris", "Lagos", "Osaka", "Lima", "Oslo", "Austin"),
    "Zip code": ("10001", "94103", "73301", "60614"),
    "Amount": ("25", "100", "42.50", "7"),
    "Username": ("alice99", "bobby_j", "carol.w", "dan42"),
    "Country": ("Kenya", "Japan", "Peru", "Norway", "Canada"),
    "Website": ("example.com", "my.site", "shop.io"),
}
WORDS = ("hello", "see you soon", "thanks", "meeting at 5", "call me", "blue", "weekly report",
         "on my way", "great job", "lunch")
