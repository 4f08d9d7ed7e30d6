module kindlab.local/pause

go 1.22
