module kindlab.invalid/gitserver

go 1.26
